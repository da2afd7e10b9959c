//! Typed security settings shared by container factories and templates.

/// The SASL mechanism (`sasl.mechanisms`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaslMechanism {
    /// PLAIN: user and password sent as is (use it over SSL).
    Plain,
    /// SCRAM-SHA-256 (needs the crate's `ssl` feature).
    ScramSha256,
    /// SCRAM-SHA-512 (needs the crate's `ssl` feature).
    ScramSha512,
}

impl SaslMechanism {
    pub(crate) fn name(self) -> &'static str {
        match self {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::ScramSha256 => "SCRAM-SHA-256",
            SaslMechanism::ScramSha512 => "SCRAM-SHA-512",
        }
    }
}

/// Typed security settings for the builders that take librdkafka properties (container factories
/// and templates). Secrets given here are never shown.
pub trait SecuritySettings: Sized {
    /// Sets a librdkafka property.
    fn with_property(self, key: &str, value: String) -> Self;

    /// SASL authentication (`security.protocol`, `sasl.mechanisms`, `sasl.username`,
    /// `sasl.password`), over SSL when `over_ssl` (which needs the crate's `ssl` feature).
    fn sasl(self, mechanism: SaslMechanism, username: &str, password: &str, over_ssl: bool) -> Self {
        self.with_property("security.protocol", if over_ssl { "sasl_ssl" } else { "sasl_plaintext" }.to_string())
            .with_property("sasl.mechanisms", mechanism.name().to_string())
            .with_property("sasl.username", username.to_string())
            .with_property("sasl.password", password.to_string())
    }

    /// The CA certificates to verify the brokers with (`ssl.ca.location`; needs the `ssl` feature).
    fn ssl_ca_location(self, path: impl Into<String>) -> Self {
        self.with_property("ssl.ca.location", path.into())
    }

    /// A client certificate and its key (`ssl.certificate.location`, `ssl.key.location`,
    /// `ssl.key.password`; needs the `ssl` feature).
    fn ssl_client_key(
        self,
        certificate: impl Into<String>,
        key: impl Into<String>,
        key_password: impl Into<String>,
    ) -> Self {
        self.with_property("ssl.certificate.location", certificate.into())
            .with_property("ssl.key.location", key.into())
            .with_property("ssl.key.password", key_password.into())
    }
}

impl SecuritySettings for super::ContainerFactoryBuilder {
    fn with_property(self, key: &str, value: String) -> Self {
        self.set(key, value)
    }
}

impl SecuritySettings for crate::producer::KafkaTemplateBuilder {
    fn with_property(self, key: &str, value: String) -> Self {
        self.set(key, value)
    }
}

/// A hint appended to librdkafka's refusal of a security setting it was built without.
pub(crate) fn feature_hint(reason: &str) -> Option<&'static str> {
    if reason.contains("OpenSSL")
        || reason.contains("SSL")
        || reason.contains("recompile")
        || reason.contains("SASL mechanism SCRAM")
    {
        Some("; SSL (and SCRAM) need kafka-listener's `ssl` cargo feature")
    } else if reason.contains("GSSAPI") {
        Some("; SASL/GSSAPI needs kafka-listener's `gssapi` cargo feature")
    } else if reason.contains("zstd") {
        Some("; zstd compression needs kafka-listener's `zstd` cargo feature")
    } else {
        None
    }
}
