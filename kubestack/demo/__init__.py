"""A small real application to watch and break: ``shop``, an HTTP service that reads products through a Redis cache
to PostgreSQL, reserves stock in PostgreSQL, writes orders to MariaDB and publishes them to Kafka, where the
``order-writer`` consumer writes them back to PostgreSQL. Both export their own request metrics (Prometheus
exposition, read by the ``http`` plugin) and name their dependencies as ``kubestack_peer_info`` series, so the
worker links the application to Redis, PostgreSQL, MariaDB and Kafka. ``load`` drives steady traffic at it.

Run each part with ``python -m kubestack.demo {app,consumer,load} --config demo.json``; ``kubestack demo`` starts
them against the local stack and injects faults (``kubestack.demo.faults``)."""
