"""Where the demo's parts find their dependencies, and how hard the load pushes."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from kubestack.errors import ConfigError


class Endpoint(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(ge=1, le=65535)
    user: str = ""
    password: SecretStr = SecretStr("")
    database: str = ""

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


class DemoConfig(BaseModel):
    """The demo's wiring: every part reads the same file."""

    model_config = ConfigDict(extra="forbid")

    redis: Endpoint
    postgresql: Endpoint
    mariadb: Endpoint
    kafka_bootstrap: str = Field(min_length=3, description="host:port of the broker the orders go through")
    topic: str = "demo.orders"
    group: str = "demo-order-writer"
    app_host: str = "127.0.0.1"
    app_port: int = Field(default=8431, ge=1, le=65535)
    consumer_metrics_port: int = Field(default=8432, ge=1, le=65535)
    timeout_s: float = Field(default=2.0, gt=0, description="Per-dependency call timeout in a request")
    pool_size: int = Field(default=4, ge=1, le=64)
    pool_lifetime_s: float = Field(default=10.0, gt=0,
                                   description="A database connection is replaced after this long (as real pools do)")
    cache_ttl_s: int = Field(default=300, ge=1)
    products: int = Field(default=2000, ge=10)
    hot_products: int = Field(default=5, ge=1, description="Orders go to the first N products (a hot set)")
    db_read_cost: int = Field(default=150_000, ge=1, description=(
        "Rows the database aggregates to build one product page (what a cache miss costs it)"))
    page_bytes: int = Field(default=4096, ge=16, description="Size of one cached product page")
    volume: Path | None = Field(default=None, description=(
        "A small filesystem of its own holding PostgreSQL's order-events tablespace (for the volume-full fault)"))
    rate: float = Field(default=20.0, gt=0, description="Load: requests per second")
    order_share: float = Field(default=0.3, ge=0, le=1, description="Load: the share of requests that are orders")

    @property
    def app_url(self) -> str:
        return f"http://{self.app_host}:{self.app_port}"

    @classmethod
    def load(cls, path: Path) -> DemoConfig:
        try:
            return cls.model_validate_json(path.read_text())
        except OSError as exc:
            raise ConfigError(f"demo config {path} cannot be read: {exc.strerror}") from exc
        except ValueError as exc:
            raise ConfigError(f"demo config {path} is invalid: {exc}") from exc

    def save(self, path: Path) -> None:
        """Written private to the user: it holds the databases' passwords."""
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.chmod(0o600)
        data = self.model_dump(mode="json")
        for name in ("redis", "postgresql", "mariadb"):
            data[name]["password"] = getattr(self, name).password.get_secret_value()
        import json

        path.write_text(json.dumps(data, indent=2))
