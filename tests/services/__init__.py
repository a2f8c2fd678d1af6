"""Real servers for the tests, one module per service, each exposing session fixtures.

``tests/conftest.py`` registers every module here as a pytest plugin, so adding a service is adding a file.
"""
