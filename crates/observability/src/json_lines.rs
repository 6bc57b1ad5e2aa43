//! The JSON log line (`LOG_FORMAT=json`), written straight into the line's
//! buffer.
//!
//! The line is what tracing-subscriber's own JSON format writes with the
//! event's fields flattened and the current span: `timestamp`, `level`, the
//! event's fields (`message` first), `target`, and `span`, the fields of
//! the innermost span with its `name`:
//!
//! ```text
//! {"timestamp":"2026-12-01T10:00:00.123456Z","level":"INFO","message":"request finished","method":"GET",…,"target":"kit_server","span":{"method":"GET",…,"name":"request"}}
//! ```
//!
//! Why not that format itself: it goes through serde for every field, and
//! reads the span's fields back from their JSON text (they are kept as
//! text) to write them out again, for every line. `make profile` measured
//! those lines at about a sixth of a request's CPU time. Here the event's
//! fields are written directly, and so are a span's ([`SpanFields`], kept
//! as text when the span is made, and copied into each line as it is).

use std::fmt::{self, Write};

use chrono::{SecondsFormat, Utc};
use tracing::{
    Event, Subscriber,
    field::{Field, Visit},
    span::Record,
};
use tracing_subscriber::{
    field::RecordFields,
    fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields, format::Writer},
    registry::LookupSpan,
};

/// The event format of the JSON log lines; spans' fields are kept by
/// [`SpanFields`] (the log layer's `fmt_fields`).
#[derive(Clone, Copy, Debug, Default)]
pub struct JsonLines;

/// A span's fields as the JSON lines write them, kept as the text
/// `,"a":1,"b":"x"` from when the span is made (tracing-subscriber's
/// `JsonFields` builds a map of JSON values for them, serialises it, and
/// parses it again for every field recorded later). A field recorded later
/// is appended; the services record each field at most once (a field
/// declared `Empty` is not written until it is recorded).
#[derive(Clone, Copy, Debug, Default)]
pub struct SpanFields;

impl<'writer> FormatFields<'writer> for SpanFields {
    fn format_fields<R: RecordFields>(
        &self,
        mut writer: Writer<'writer>,
        fields: R,
    ) -> fmt::Result {
        let mut visitor = Fields {
            out: &mut writer,
            result: Ok(()),
        };
        fields.record(&mut visitor);
        visitor.result
    }

    fn add_fields(
        &self,
        current: &'writer mut FormattedFields<Self>,
        fields: &Record<'_>,
    ) -> fmt::Result {
        self.format_fields(current.as_writer(), fields)
    }
}

impl<S> FormatEvent<S, SpanFields> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, SpanFields>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let metadata = event.metadata();
        writer.write_str("{\"timestamp\":\"")?;
        writer.write_str(&Utc::now().to_rfc3339_opts(SecondsFormat::Micros, true))?;
        writer.write_str("\",\"level\":\"")?;
        writer.write_str(metadata.level().as_str())?;
        writer.write_char('"')?;
        let mut fields = Fields {
            out: &mut writer,
            result: Ok(()),
        };
        event.record(&mut fields);
        fields.result?;
        writer.write_str(",\"target\":")?;
        write_string(&mut writer, metadata.target())?;
        if let Some(span) = ctx.lookup_current() {
            writer.write_str(",\"span\":{")?;
            let extensions = span.extensions();
            // `,"a":1,"b":"x"` as SpanFields wrote it, then the name.
            let fields = extensions
                .get::<FormattedFields<SpanFields>>()
                .and_then(|fields| fields.fields.strip_prefix(','));
            if let Some(fields) = fields {
                writer.write_str(fields)?;
                writer.write_char(',')?;
            }
            writer.write_str("\"name\":")?;
            write_string(&mut writer, span.name())?;
            writer.write_char('}')?;
        }
        writer.write_str("}\n")
    }
}

/// Writes each field of an event as `,"name":value`.
struct Fields<'a, 'w> {
    out: &'a mut Writer<'w>,
    result: fmt::Result,
}

impl Fields<'_, '_> {
    fn field(&mut self, field: &Field, value: impl FnOnce(&mut Writer<'_>) -> fmt::Result) {
        if self.result.is_err() {
            return;
        }
        self.result = (|| {
            self.out.write_char(',')?;
            write_string(self.out, field.name())?;
            self.out.write_char(':')?;
            value(self.out)
        })();
    }
}

impl Visit for Fields<'_, '_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.field(field, |out| write_string(out, value));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.field(field, |out| write!(out, "{value}"));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.field(field, |out| write!(out, "{value}"));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.field(field, |out| write!(out, "{value}"));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        // JSON has no NaN or infinity: those are written as strings.
        if value.is_finite() {
            self.field(field, |out| write!(out, "{value}"));
        } else {
            self.field(field, |out| write_string(out, &value.to_string()));
        }
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.field(field, |out| write_display(out, value));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.field(field, |out| {
            out.write_char('"')?;
            write!(Escaped(out), "{value:?}")?;
            out.write_char('"')
        });
    }
}

fn write_display(out: &mut Writer<'_>, value: &dyn fmt::Display) -> fmt::Result {
    out.write_char('"')?;
    write!(Escaped(out), "{value}")?;
    out.write_char('"')
}

/// `text` as a JSON string.
fn write_string(out: &mut Writer<'_>, text: &str) -> fmt::Result {
    out.write_char('"')?;
    Escaped(out).write_str(text)?;
    out.write_char('"')
}

/// Writes what it is given with JSON's string escapes.
struct Escaped<'a, 'w>(&'a mut Writer<'w>);

impl Write for Escaped<'_, '_> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        let mut plain = 0;
        for (i, byte) in text.bytes().enumerate() {
            let escape = match byte {
                b'"' => "\\\"",
                b'\\' => "\\\\",
                b'\n' => "\\n",
                b'\r' => "\\r",
                b'\t' => "\\t",
                0..=0x1f => "",
                _ => continue,
            };
            self.0.write_str(&text[plain..i])?;
            if escape.is_empty() {
                write!(self.0, "\\u{byte:04x}")?;
            } else {
                self.0.write_str(escape)?;
            }
            plain = i + 1;
        }
        self.0.write_str(&text[plain..])
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::{fmt::MakeWriter, prelude::*};

    use super::*;

    /// What the lines of a test's subscriber are written to.
    #[derive(Clone, Default)]
    pub(crate) struct Memory(Arc<Mutex<Vec<u8>>>);

    impl Memory {
        /// A subscriber that writes JSON lines, as the services do, here.
        pub(crate) fn subscriber(&self) -> impl tracing::Subscriber + use<> {
            tracing_subscriber::registry().with(
                tracing_subscriber::fmt::layer()
                    .fmt_fields(SpanFields)
                    .event_format(JsonLines)
                    .with_writer(self.clone()),
            )
        }

        /// What was written so far.
        pub(crate) fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).expect("the lines are UTF-8")
        }
    }

    impl std::io::Write for Memory {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Memory {
        type Writer = Memory;

        fn make_writer(&'a self) -> Memory {
            self.clone()
        }
    }

    #[test]
    fn lines_are_json_with_the_events_fields_and_the_current_span() {
        let memory = Memory::default();
        let subscriber = memory.subscriber();
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(status = 200u16, latency_ms = 1.5, "before any span");
            let span = tracing::info_span!(
                "request",
                route = "/client/{id}",
                request_id = "r-1",
                status = tracing::field::Empty,
            );
            // Recorded after the span was made: appended to its fields.
            span.record("status", 201);
            let _entered = span.enter();
            let error = std::io::Error::other("disk \"full\"\n");
            tracing::warn!(
                error = %error,
                count = -3i64,
                ok = true,
                raw = "x\u{1}y",
                odd = ?"a\u{1}b",
                "it failed"
            );
            tracing::info_span!("inner").in_scope(|| tracing::info!("in a span without fields"));
        });
        let text = memory.text();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|line| serde_json::from_str(line).unwrap_or_else(|err| panic!("{err}: {line}")))
            .collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert_eq!(lines[0]["level"], "INFO");
        assert_eq!(lines[0]["message"], "before any span");
        assert_eq!(lines[0]["status"], 200);
        assert_eq!(lines[0]["latency_ms"], 1.5);
        assert!(lines[0]["span"].is_null());
        assert!(lines[0]["timestamp"].as_str().unwrap().ends_with('Z'));
        assert_eq!(lines[0]["target"], module_path!());

        assert_eq!(lines[1]["level"], "WARN");
        assert_eq!(lines[1]["message"], "it failed");
        assert_eq!(lines[1]["error"], "disk \"full\"\n");
        assert_eq!(lines[1]["count"], -3);
        assert_eq!(lines[1]["ok"], true);
        assert_eq!(lines[1]["raw"], "x\u{1}y");
        assert_eq!(lines[1]["odd"], "\"a\\u{1}b\"");
        assert_eq!(
            lines[1]["span"],
            serde_json::json!({"route": "/client/{id}", "request_id": "r-1", "status": 201, "name": "request"})
        );
        assert_eq!(lines[2]["span"], serde_json::json!({"name": "inner"}));
    }
}
