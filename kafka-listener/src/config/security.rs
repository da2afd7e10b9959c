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

/// The properties of SASL over plaintext or SSL.
pub(crate) fn sasl(
    mechanism: SaslMechanism,
    username: &str,
    password: &str,
    over_ssl: bool,
) -> [(&'static str, String); 4] {
    [
        ("security.protocol", if over_ssl { "sasl_ssl" } else { "sasl_plaintext" }.to_string()),
        ("sasl.mechanisms", mechanism.name().to_string()),
        ("sasl.username", username.to_string()),
        ("sasl.password", password.to_string()),
    ]
}

/// A hint appended to librdkafka's refusal of a security setting it was built without.
pub(crate) fn feature_hint(reason: &str) -> Option<&'static str> {
    (reason.contains("OpenSSL") || reason.contains("SSL") || reason.contains("recompile"))
        .then_some("; SSL (and SCRAM) need kafka-listener's `ssl` cargo feature")
}
