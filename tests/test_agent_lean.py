"""The agent's deferred imports: PyMySQL's ``cryptography`` modules are stand-ins until used, and work when used.
Each case runs in a fresh interpreter (what is imported is the point)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

RUST = "cryptography.hazmat.bindings._rust"


def run_fresh(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_pymysql_does_not_load_cryptography_until_rsa_is_needed():
    out = run_fresh(f"""
        import sys
        from kubestack.agents.lean import defer_imports
        defer_imports()
        import pymysql, pymysql._auth as auth, redis.asyncio
        print(auth._have_cryptography, {RUST!r} in sys.modules)
        from cryptography.hazmat.primitives.asymmetric import rsa
        from cryptography.hazmat.primitives import serialization
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        salt = b"s" * 20
        sealed = auth.sha2_rsa_encrypt(b"secret", salt, pem)
        from cryptography.hazmat.primitives.asymmetric import padding
        from cryptography.hazmat.primitives import hashes
        plain = key.decrypt(sealed, padding.OAEP(mgf=padding.MGF1(algorithm=hashes.SHA1()), algorithm=hashes.SHA1(),
                                                 label=None))
        print(bytes(a ^ b for a, b in zip(plain, (salt * 2)[:len(plain)])))
    """)
    assert out.splitlines() == ["True False", "b'secret\\x00'"]


def test_a_submodule_below_a_stand_in_imports_its_package_for_real():
    out = run_fresh("""
        import sys
        from kubestack.agents.lean import defer_imports
        defer_imports()
        import pymysql
        import cryptography.hazmat.primitives.serialization.ssh as ssh
        from cryptography.hazmat.primitives import serialization
        print(ssh is sys.modules[ssh.__name__], serialization.Encoding.PEM is sys.modules[serialization.__name__].Encoding.PEM,
              type(serialization).__name__ != "_StandIn")
    """)
    assert out == "True True True"


def test_a_missing_module_stays_missing():
    out = run_fresh("""
        import sys
        from kubestack.agents.lean import DeferredImports
        sys.meta_path.insert(0, DeferredImports(frozenset({"json.not_there", "no_such_package.mod"})))
        for name in ("json.not_there", "no_such_package.mod"):
            try:
                __import__(name)
            except ModuleNotFoundError:
                print("missing", name)
    """)
    assert out.splitlines() == ["missing json.not_there", "missing no_such_package.mod"]
