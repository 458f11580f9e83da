use thiserror::Error;

#[derive(Debug, Error)]
pub enum ConsoleError {
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("database url {url:?} is neither sqlite:// nor postgres://")]
    UnsupportedDatabase { url: String },
    #[error("cannot read {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error("kafka setting {key} names environment variable {var}, which is not set")]
    MissingEnv { key: String, var: String },
    #[error("{0}")]
    KafkaSetup(String),
    #[error("password hashing: {0}")]
    Password(String),
    #[error("invalid user: {0}")]
    InvalidUser(String),
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: String, source: std::io::Error },
    #[error("{0}")]
    Review(#[from] crate::store::ReviewError),
}

pub type Result<T, E = ConsoleError> = std::result::Result<T, E>;
