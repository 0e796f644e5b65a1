"""Settings from environment variables with the prefix `VC_` (KAFKA_BOOTSTRAP_SERVERS, DATABASE_URL as-is)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from plumbing.kafka import KafkaConnection, SaslMechanism, SecurityProtocol
from plumbing.personal import DEVELOPMENT_MASTER_KEY, master_key_from_text

LOCAL_KAFKA = "127.0.0.1:29092"
LOCAL_DATABASE = "postgresql://postgres@127.0.0.1:25432/villagecounsel"
DEVELOPMENT_SECRET = "villagecounsel-development-only-secret-change-me"  # noqa: S105 - refused outside development


PersonalMasterKey = Annotated[
    str,
    Field(
        description="VC_PERSONAL_MASTER_KEY: 32 bytes in base64 that wrap the personal-data keys in the key "
        "store (intake and ledger); keep it secret, in a Secret"
    ),
]


def refuse_development_master_key(environment: str, master_key: str) -> None:
    master_key_from_text(master_key)
    if environment != "development" and master_key == DEVELOPMENT_MASTER_KEY:
        raise ValueError("VC_PERSONAL_MASTER_KEY must be set to a real key outside development")


class ServiceSettings(BaseSettings):
    """What every service reads; each service subclasses it once with its own fields."""

    model_config = SettingsConfigDict(env_prefix="VC_", extra="ignore", populate_by_name=True)

    kafka_bootstrap_servers: str = Field(
        default=LOCAL_KAFKA,
        validation_alias=AliasChoices("KAFKA_BOOTSTRAP_SERVERS", "VC_KAFKA_BOOTSTRAP_SERVERS"),
    )
    kafka_security_protocol: SecurityProtocol = Field(
        default="PLAINTEXT",
        description="SASL_SSL on the devstack and the cluster; PLAINTEXT only for an open broker (compose)",
    )
    kafka_sasl_mechanism: SaslMechanism = "SCRAM-SHA-512"
    kafka_sasl_username: str | None = Field(default=None, description="this service's own Kafka user")
    kafka_sasl_password: SecretStr | None = None
    kafka_sasl_password_file: Path | None = Field(
        default=None, description="a file holding the password (a mounted Secret), instead of the value"
    )
    kafka_ca_file: Path | None = Field(
        default=None, description="PEM of the CA that signed the broker's certificate (else the system's)"
    )
    database_url: str = Field(
        default=LOCAL_DATABASE, validation_alias=AliasChoices("DATABASE_URL", "VC_DATABASE_URL")
    )
    log_level: str = "INFO"
    http_host: str = "127.0.0.1"
    http_port: int = 8000
    kafka_timeout_seconds: float = Field(default=10.0, gt=0)
    database_pool_max: int = Field(default=10, ge=1)
    topic_replication_factor: int = Field(default=1, ge=1, description="3 on a production cluster")

    @model_validator(mode="after")
    def _kafka_credentials_complete(self) -> ServiceSettings:
        if self.kafka_security_protocol.startswith("SASL_"):
            if not self.kafka_sasl_username:
                raise ValueError(f"VC_KAFKA_SASL_USERNAME is needed with {self.kafka_security_protocol}")
            if (self.kafka_sasl_password is None) == (self.kafka_sasl_password_file is None):
                raise ValueError(
                    f"give exactly one of VC_KAFKA_SASL_PASSWORD and VC_KAFKA_SASL_PASSWORD_FILE "
                    f"with {self.kafka_security_protocol}"
                )
        return self

    def kafka_connection(self) -> KafkaConnection:
        """How this process connects to Kafka; a password file is read here (in a lifespan), not at import."""
        password = self.kafka_sasl_password.get_secret_value() if self.kafka_sasl_password else None
        if self.kafka_sasl_password_file is not None:
            password = self.kafka_sasl_password_file.read_text().strip()
        return KafkaConnection(
            bootstrap_servers=self.kafka_bootstrap_servers,
            security_protocol=self.kafka_security_protocol,
            sasl_mechanism=self.kafka_sasl_mechanism,
            username=self.kafka_sasl_username,
            password=password,
            ca_file=self.kafka_ca_file,
        )


class TokenSettings(ServiceSettings):
    """Verifying bearer tokens (JWT): the identity provider's keys from its JWKS URL (RS256/ES256), a key
    or JWKS file, or in development HS256 with a shared secret (alone, or beside the JWKS URL)."""

    environment: Literal["development", "production"] = "development"
    jwt_algorithm: Literal["HS256", "RS256", "ES256"] = Field(
        default="HS256",
        description="the algorithm of the configured secret or key file; HS256 is refused in production",
    )
    jwt_secret: str = Field(default=DEVELOPMENT_SECRET, description="HS256 signing key")
    jwt_public_key_file: Path | None = Field(default=None, description="PEM public key for RS256/ES256")
    jwt_jwks_file: Path | None = Field(default=None, description="a JWKS document; keys chosen by `kid`")
    jwt_jwks_url: str | None = Field(
        default=None,
        description="the identity provider's JWKS URL (OpenID Connect `jwks_uri`); its RS256/ES256 keys "
        "are fetched, cached and fetched again for an unknown `kid`",
    )
    jwt_jwks_cache_seconds: float = Field(
        default=300.0,
        gt=0,
        le=86_400,
        description="how long fetched keys are trusted: a key removed from the JWKS stops working after this",
    )
    jwt_jwks_refetch_seconds: float = Field(
        default=10.0,
        ge=0,
        description="the least time between two fetches prompted by a token with an unknown `kid`",
    )
    jwt_jwks_timeout_seconds: float = Field(default=5.0, gt=0)
    jwt_max_lifetime_seconds: int = Field(
        default=86_400,
        gt=0,
        description="tokens whose `exp` - `iat` exceeds this are refused (24 h)",
    )
    jwt_issuer: str = "villagecounsel"
    jwt_audience: str = "villagecounsel"

    @model_validator(mode="after")
    def _no_shared_secret_in_production(self) -> TokenSettings:
        if self.environment == "production" and self.jwt_algorithm == "HS256":
            raise ValueError(
                "VC_JWT_ALGORITHM=HS256 (a shared secret) is refused in production: set VC_JWT_ALGORITHM "
                "to RS256 or ES256 and VC_JWT_JWKS_URL to the identity provider's JWKS"
            )
        url = self.jwt_jwks_url
        if self.environment == "production" and url is not None and not url.startswith("https://"):
            raise ValueError(f"VC_JWT_JWKS_URL must be an https:// URL in production: {url}")
        if (
            self.jwt_algorithm != "HS256"
            and self.jwt_jwks_url is None
            and self.jwt_jwks_file is None
            and self.jwt_public_key_file is None
        ):
            raise ValueError(
                f"VC_JWT_ALGORITHM={self.jwt_algorithm} needs VC_JWT_JWKS_URL, VC_JWT_JWKS_FILE "
                "or VC_JWT_PUBLIC_KEY_FILE"
            )
        return self

    @model_validator(mode="after")
    def _closed_broker_outside_development(self) -> TokenSettings:
        if self.environment != "development" and self.kafka_security_protocol != "SASL_SSL":
            raise ValueError(
                "VC_KAFKA_SECURITY_PROTOCOL must be SASL_SSL outside development "
                f"(is {self.kafka_security_protocol}): a broker anyone can write to is not for production"
            )
        return self


class ProjectionSettings(TokenSettings):
    """Settings of a service that runs a projection."""

    batch_max_records: int = Field(default=2000, ge=1)
    rebuild_batch_max_records: int = Field(
        default=10_000,
        ge=1,
        description="a rebuild's batches: larger ones sum more rows before writing (bench/README.md)",
    )
    rebuild_workers: int = Field(
        default=1,
        ge=1,
        le=64,
        description="processes a rebuild splits the partitions among (`rebuild --workers`)",
    )
    poll_timeout_ms: int = Field(default=500, ge=1)
    stall_after_seconds: float = Field(default=120.0, gt=0)
    kafka_commit_interval_seconds: float = Field(
        default=1.0,
        ge=0,
        description="the consumer group's offsets (read by lag dashboards and the autoscaler only: the ones "
        "that count are PostgreSQL's) are committed to Kafka at most this often; 0: after every batch",
    )
    database_command_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        description="a statement of the live projection or its API without an answer for this long fails "
        "and is retried on a new connection (a half-open or silently hung connection is found out)",
    )
    retired_schema_keep_hours: float = Field(
        default=72.0,
        gt=0,
        description="a rebuild's retired schema (the tables it switched away from) is dropped after this",
    )
    open_region: str | None = Field(
        default=None,
        pattern=r"^([0-9]{2}|[0-9]{4}|[0-9]{6}|[0-9]{9})$",
        description="local mode, development only: a request without a token reads this region "
        "(e.g. 37) as its department would; requests with a token are checked as always",
    )

    @field_validator("open_region", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        """`VC_OPEN_REGION=` (set but empty) requires tokens, as the README says; it is not a bad code."""
        return None if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="after")
    def _open_reads_only_in_development(self) -> ProjectionSettings:
        if self.open_region is not None and self.environment != "development":
            raise ValueError("VC_OPEN_REGION (reading without a token) is for local development only")
        return self
