"""The demo's tables and seed data, created through connections the caller opens (an administrator's)."""

from __future__ import annotations

POSTGRES = (
    "CREATE TABLE IF NOT EXISTS products (id int PRIMARY KEY, name text NOT NULL, price numeric NOT NULL, "
    "page text NOT NULL)",
    "CREATE TABLE IF NOT EXISTS stock (product_id int PRIMARY KEY, qty int NOT NULL, reserved int NOT NULL "
    "DEFAULT 0)",
    "CREATE TABLE IF NOT EXISTS order_events (id bigserial PRIMARY KEY, order_id text NOT NULL, product_id int NOT "
    "NULL, qty int NOT NULL, at timestamptz NOT NULL DEFAULT now())",
)
MARIADB = (
    "CREATE TABLE IF NOT EXISTS orders (id bigint AUTO_INCREMENT PRIMARY KEY, order_id varchar(40) NOT NULL, "
    "product_id int NOT NULL, qty int NOT NULL, at timestamp(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3)) "
    "ENGINE=InnoDB",
    "CREATE TABLE IF NOT EXISTS inventory (product_id int PRIMARY KEY, sold int NOT NULL DEFAULT 0) ENGINE=InnoDB",
)


def page_of(product: int, size: int) -> str:
    text = f"product {product}: a fine thing. "
    return (text * (size // len(text) + 1))[:size]


def setup_postgresql(conn, products: int, page_bytes: int) -> None:
    """Tables and ``products`` rows (idempotent); ``conn`` is an autocommit psycopg connection."""
    for statement in POSTGRES:
        conn.execute(statement)
    have = conn.execute("SELECT count(*) FROM products").fetchone()[0]
    if have < products:
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO products VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
                            [(i, f"product {i}", 1 + i % 97, page_of(i, page_bytes)) for i in range(1, products + 1)])
            cur.executemany("INSERT INTO stock VALUES (%s, 1000000, 0) ON CONFLICT DO NOTHING",
                            [(i,) for i in range(1, products + 1)])


def setup_mariadb(conn, products: int) -> None:
    """Tables and ``inventory`` rows (idempotent); ``conn`` is an autocommit pymysql connection to the database."""
    with conn.cursor() as cur:
        for statement in MARIADB:
            cur.execute(statement)
        cur.executemany("INSERT IGNORE INTO inventory (product_id) VALUES (%s)", [(i,) for i in range(1, products + 1)])
