//! Reading reports and events back: one pass over the text, no duplicate key anywhere (a
//! first-wins reader and a last-wins reader would see two different reports in the same
//! bytes), no trailing bytes, and no copy of the whole document for the digest. Events are
//! checked against the hash chain one at a time as they are parsed. Their canonical bytes go
//! straight into the digest when the report's members allow it (no member but `digest` sorts
//! before `events`, as in every report the sandbox writes); otherwise they are kept for it.

use std::collections::HashSet;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::{write_canonical_without, Report, ReportEvent, VerifyError};

/// The marker that tells a duplicate key from other data errors of the JSON parser.
const DUPLICATE: &str = "duplicate key ";

/// A JSON value like [`Value`], except that an object holding the same key twice is an error.
struct Strict(Value);

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Strict, D::Error> {
        deserializer.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(Strict(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if out.contains_key(&key) {
                return Err(de::Error::custom(duplicate(&key)));
            }
            let Strict(value) = map.next_value()?;
            out.insert(key, value);
        }
        Ok(Value::Object(out))
    }
}

/// The escaped, capped form of text a report chose, as error messages quote it.
fn shown(text: &str) -> String {
    super::escape::escape_text(text, super::escape::SHOWN_TEXT_BYTES)
}

/// [`VerifyError::Malformed`] with the parser's message escaped: serde quotes the value it
/// did not expect, which is the report's text and may hold line breaks or escapes.
fn malformed(message: &str) -> VerifyError {
    VerifyError::Malformed(shown(message))
}

fn duplicate(key: &str) -> String {
    format!(
        "{DUPLICATE}`{}`",
        super::escape::escape_text(key, super::escape::SHOWN_TEXT_BYTES)
    )
}

/// The events array, read one event at a time: chain-checked, turned into a [`ReportEvent`],
/// and written canonically (with its hash) for the digest; the JSON value is then dropped.
#[derive(Default)]
struct Events {
    events: Vec<ReportEvent>,
    /// The canonical bytes not yet hashed: all of them without `digest`, one event's with it.
    canonical: Vec<u8>,
    /// The report's digest so far, when the events come first in its canonical form.
    digest: Option<Sha256>,
    previous: String,
    broken: Option<u64>,
    malformed: Option<String>,
}

impl Events {
    /// Hands the canonical bytes written so far to the digest, when it is streamed.
    fn flush(&mut self) {
        if let Some(digest) = &mut self.digest {
            digest.update(&self.canonical);
            self.canonical.clear();
        }
    }
}

struct EventsSeed<'a>(&'a mut Events);

impl<'de> DeserializeSeed<'de> for EventsSeed<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for EventsSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of events")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let state = self.0;
        state.canonical.push(b'[');
        let mut seq_no = 0u64;
        while let Some(Strict(event)) = seq.next_element()? {
            if seq_no > 0 {
                state.canonical.push(b',');
            }
            write_canonical_without(&event, None, &mut state.canonical);
            let expected = super::hash_with_previous(&state.previous, &event);
            let written = event.get("hash").and_then(Value::as_str).unwrap_or("");
            if written != expected && state.broken.is_none() {
                state.broken = Some(seq_no);
            }
            state.previous = expected;
            if state.malformed.is_none() {
                match ReportEvent::deserialize(&event) {
                    Ok(parsed) => state.events.push(parsed),
                    Err(e) => {
                        state.malformed = Some(format!("event {seq_no}: {}", shown(&e.to_string())))
                    }
                }
            }
            seq_no += 1;
            state.flush();
        }
        state.canonical.push(b']');
        state.flush();
        Ok(())
    }
    // Anything but an array is kept as the canonical text of what it is, so the digest and
    // the shape check below both see it.
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        let value = StrictVisitor.visit_map(map)?;
        self.0.malformed = Some("`events` is not an array".to_owned());
        write_canonical_without(&value, None, &mut self.0.canonical);
        self.0.flush();
        Ok(())
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        self.other(Value::String(v.to_owned()))
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<(), E> {
        self.other(Value::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        self.other(Value::from(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        self.other(Value::from(v))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        self.other(StrictVisitor.visit_f64(v)?)
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.other(Value::Null)
    }
}

impl EventsSeed<'_> {
    fn other<E>(self, value: Value) -> Result<(), E> {
        self.0.malformed = Some("`events` is not an array".to_owned());
        write_canonical_without(&value, None, &mut self.0.canonical);
        self.0.flush();
        Ok(())
    }
}

/// The report object: every member but `events` kept as a value, `events` streamed.
struct TopLevel {
    members: Map<String, Value>,
    events: Option<Events>,
}

/// Whether a member sorts before `events` in the canonical form (and so must be hashed first).
fn sorts_first(key: &str) -> bool {
    key < "events" && key != "digest"
}

/// Reads the report object; with `keep_events`, the events' canonical bytes are kept whole
/// instead of streamed into the digest.
struct TopLevelVisitor {
    keep_events: bool,
}

impl<'de> Visitor<'de> for TopLevelVisitor {
    type Value = TopLevel;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a report object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<TopLevel, A::Error> {
        let mut top = TopLevel {
            members: Map::new(),
            events: None,
        };
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if !seen.insert(key.clone()) {
                return Err(de::Error::custom(duplicate(&key)));
            }
            if key == "events" {
                let mut events = Events::default();
                if !self.keep_events && !seen.iter().any(|k| sorts_first(k)) {
                    let mut digest = Sha256::new();
                    digest.update(b"{\"events\":");
                    events.digest = Some(digest);
                }
                map.next_value_seed(EventsSeed(&mut events))?;
                top.events = Some(events);
            } else {
                let Strict(value) = map.next_value()?;
                top.members.insert(key, value);
            }
        }
        Ok(top)
    }
}

impl<'de> DeserializeSeed<'de> for TopLevelVisitor {
    type Value = TopLevel;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<TopLevel, D::Error> {
        deserializer.deserialize_map(self)
    }
}

/// A JSON parser error as a [`VerifyError`]: a duplicate key is [`VerifyError::Ambiguous`].
fn parse_error(error: serde_json::Error) -> VerifyError {
    let text = error.to_string();
    match text.strip_prefix(DUPLICATE) {
        Some(rest) if error.is_data() => VerifyError::Ambiguous(format!("{DUPLICATE}{rest}")),
        _ if error.is_data() => malformed(&text),
        _ => VerifyError::NotJson(shown(&text)),
    }
}

/// Parses the whole text as one JSON value, read with `seed`, and nothing after it.
fn parse_all<'de, S: DeserializeSeed<'de>>(
    text: &'de str,
    seed: S,
) -> Result<S::Value, VerifyError> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let value = seed.deserialize(&mut deserializer).map_err(parse_error)?;
    deserializer.end().map_err(parse_error)?;
    Ok(value)
}

struct StrictSeed;

impl<'de> DeserializeSeed<'de> for StrictSeed {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(StrictVisitor)
    }
}

/// Checks a report's event chain and digest, working on the JSON as written so that any edit
/// (also to fields this version does not know) is detected. The text is parsed once; a key
/// written twice in any object, or anything after the report, is refused.
pub fn verify_report(text: &str) -> Result<Report, VerifyError> {
    let mut top = parse_all(text, TopLevelVisitor { keep_events: false })?;
    let streamed = top.events.as_ref().is_some_and(|e| e.digest.is_some());
    if streamed && top.members.keys().any(|k| sorts_first(k)) {
        // A member that sorts before `events` came after it: the streamed digest is in the
        // wrong order. Rare (no report the sandbox writes has one): read again, keeping the
        // events' bytes.
        top = parse_all(text, TopLevelVisitor { keep_events: true })?;
    }
    let TopLevel { members, events } = top;
    let mut doc = Value::Object(members);
    // The shape of everything but the events, which were checked one at a time: an empty
    // array stands in for them while it is read.
    let shape = match (&mut doc, &events) {
        (Value::Object(map), Some(_)) => {
            map.insert("events".into(), Value::Array(Vec::new()));
            let shape = Report::deserialize(&doc);
            if let Value::Object(map) = &mut doc {
                map.remove("events");
            }
            shape
        }
        _ => Report::deserialize(&doc),
    };
    let mut report = shape.map_err(|e| malformed(&e.to_string()))?;
    let Some(events) = events else {
        return Err(VerifyError::Malformed("missing field `events`".into()));
    };
    if let Some(message) = events.malformed {
        return Err(VerifyError::Malformed(message));
    }
    if let Some(seq) = events.broken {
        return Err(VerifyError::EventChainBroken { seq });
    }
    let Value::Object(members) = &doc else {
        return Err(VerifyError::Malformed("the report is not an object".into()));
    };
    let digest = match events.digest {
        Some(streamed) => finish_digest(streamed, members),
        None => report_digest_of(members, &events.canonical),
    };
    if digest != report.digest {
        return Err(VerifyError::DigestMismatch);
    }
    report.events = events.events;
    Ok(report)
}

/// The digest over the report's members (without `digest`) with the events given as their
/// canonical text: the same bytes the writer hashed, keys sorted at the top level.
fn report_digest_of(members: &Map<String, Value>, events: &[u8]) -> String {
    let mut keys: Vec<&str> = members
        .keys()
        .map(String::as_str)
        .filter(|k| *k != "digest")
        .chain(std::iter::once("events"))
        .collect();
    keys.sort_unstable();
    let mut out = Vec::with_capacity(events.len() + 4096);
    out.push(b'{');
    for (i, key) in keys.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let _ = serde_json::to_writer(&mut out, key);
        out.push(b':');
        match members.get(*key) {
            Some(value) if *key != "events" => write_canonical_without(value, None, &mut out),
            _ => out.extend_from_slice(events),
        }
    }
    out.push(b'}');
    hex::encode(Sha256::digest(&out))
}

/// Ends a digest that began with `{"events":[...]`: the other members (but `digest`), which
/// all sort after `events`, in order.
fn finish_digest(mut digest: Sha256, members: &Map<String, Value>) -> String {
    let mut keys: Vec<&String> = members.keys().filter(|k| *k != "digest").collect();
    keys.sort_unstable();
    let mut out = Vec::with_capacity(4096);
    for key in keys {
        out.push(b',');
        let _ = serde_json::to_writer(&mut out, key);
        out.push(b':');
        write_canonical_without(&members[key], None, &mut out);
    }
    out.push(b'}');
    digest.update(&out);
    hex::encode(digest.finalize())
}

/// Reads one event saved on its own (`explain --event-json`): the same strict JSON as a
/// report (no duplicate key, nothing after it) and the shape of a report event. No chain can
/// be checked for a lone event.
pub fn read_event(text: &str) -> Result<ReportEvent, VerifyError> {
    let value = parse_all(text, StrictSeed)?;
    ReportEvent::deserialize(&value).map_err(|e| malformed(&e.to_string()))
}
