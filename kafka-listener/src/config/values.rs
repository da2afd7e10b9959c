//! How the values of [`KafkaProperties`](super::KafkaProperties) are read, whatever loaded them.
//!
//! Files give typed values (`concurrency = 3`), environment variables and some loaders give text
//! (`"3"`): every scalar is accepted as either, then parsed by the setting's own rules, so a
//! setting means the same from TOML, YAML, `KAFKA_*` variables, figment or config-rs.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};

/// A scalar (text, number or boolean) as text.
struct ScalarText;

impl Visitor<'_> for ScalarText {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string, number or boolean")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<String, E> {
        Ok(v)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<String, E> {
        Ok(v.to_string())
    }
}

/// Text, or a number or boolean written as one (`client-id = 42` in a file).
pub(crate) fn text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    d.deserialize_any(ScalarText).map(Some)
}

/// A value parsed from its text by `FromStr` (numbers, booleans, ack modes, ...), given as text or
/// as a number or boolean; the parser's message says what is wrong.
pub(crate) fn parsed<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr,
    T::Err: fmt::Display,
{
    let text = d.deserialize_any(ScalarText)?;
    text.trim().parse::<T>().map(Some).map_err(|e| de::Error::custom(format!("`{text}`: {e}")))
}

/// A number of at least 1 (concurrency, records, counts).
pub(crate) fn count<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr + PartialOrd + From<u8>,
{
    let text = d.deserialize_any(ScalarText)?;
    match text.trim().parse::<T>() {
        Ok(n) if n >= T::from(1) => Ok(Some(n)),
        _ => Err(de::Error::custom(format!("`{text}` is not a whole number of at least 1; write e.g. 3"))),
    }
}

/// `true` or `false` (text or boolean).
pub(crate) fn flag<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    let text = d.deserialize_any(ScalarText)?;
    match text.trim().to_ascii_lowercase().as_str() {
        "true" => Ok(Some(true)),
        "false" => Ok(Some(false)),
        _ => Err(de::Error::custom(format!("`{text}` is neither true nor false"))),
    }
}

/// A duration with its unit, as the attributes take them (`"1500ms"`, `"5s"`, `"1.5s"`, `"2m"`,
/// `"1h"`). A bare number is refused: its unit would be a guess.
pub(crate) fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    let text = d.deserialize_any(ScalarText)?;
    kafka_listener_rules::parse_duration(&text).map(Some).map_err(de::Error::custom)
}

/// One or more items: a list, or text with the items separated by commas (`"a:9092,b:9092"`,
/// as Kafka's `bootstrap.servers` and an environment variable write them).
pub(crate) fn list<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    struct ListVisitor;
    impl<'de> Visitor<'de> for ListVisitor {
        type Value = Vec<String>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a list, or items separated by commas")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect())
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut items = Vec::new();
            while let Some(item) = seq.next_element_seed(TextSeed)? {
                items.push(item);
            }
            Ok(items)
        }
        // An environment map read by some loaders gives a list as a map of indices.
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut items = BTreeMap::new();
            while let Some(index) = map.next_key::<String>()? {
                let position: usize = index
                    .parse()
                    .map_err(|_| de::Error::custom(format!("`{index}` is not a list index (0, 1, ...)")))?;
                items.insert(position, map.next_value_seed(TextSeed)?);
            }
            Ok(items.into_values().collect())
        }
    }
    d.deserialize_any(ListVisitor).map(Some)
}

struct TextSeed;

impl<'de> de::DeserializeSeed<'de> for TextSeed {
    type Value = String;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<String, D::Error> {
        d.deserialize_any(ScalarText)
    }
}

/// librdkafka properties by name, from a map whose values are scalars. Nested maps are joined
/// with dots: TOML's `fetch.max.bytes = 1048576` (a dotted key, so nested tables) and YAML's
/// `fetch: {max.bytes: ...}` both give `fetch.max.bytes`.
pub(crate) fn properties<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    struct Flat<'a>(&'a mut BTreeMap<String, String>, String);
    impl<'de> de::DeserializeSeed<'de> for Flat<'_> {
        type Value = ();
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_any(self)
        }
    }
    impl<'de> Visitor<'de> for Flat<'_> {
        type Value = ();
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("librdkafka properties: a map of property names to values")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            while let Some(key) = map.next_key::<String>()? {
                let name = if self.1.is_empty() { key } else { format!("{}.{key}", self.1) };
                map.next_value_seed(Flat(&mut *self.0, name))?;
            }
            Ok(())
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
            self.leaf(v.to_string())
        }
        fn visit_bool<E: de::Error>(self, v: bool) -> Result<(), E> {
            self.leaf(v.to_string())
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
            self.leaf(v.to_string())
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
            self.leaf(v.to_string())
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
            self.leaf(v.to_string())
        }
    }
    impl Flat<'_> {
        fn leaf<E: de::Error>(self, value: String) -> Result<(), E> {
            if self.1.is_empty() {
                return Err(E::custom("expected a map of librdkafka property names to values"));
            }
            self.0.insert(self.1, value);
            Ok(())
        }
    }
    let mut out = BTreeMap::new();
    d.deserialize_any(Flat(&mut out, String::new()))?;
    Ok(out)
}

/// Parses a name the way Spring Boot binds enum values: case-insensitive, `-` and `_` alike.
pub(crate) fn relaxed(text: &str) -> String {
    text.trim().to_ascii_lowercase().replace('_', "-")
}
