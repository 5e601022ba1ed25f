//! The log subscriber: `[log] format = "pretty"` (human-readable lines) or `"json"` (one JSON
//! object per line, fields at the top level, for log pipelines). Logs go to stderr.
//!
//! Every line is made safe here, once, for every field present and future: values are
//! escaped by [`EscapingFields`] (text format) or after JSON encoding (JSON format) so text
//! from clients or GitHub cannot forge lines or drive a terminal, and passwords inside URLs are
//! masked by the writer (see `config::redact_urls_in`).

use super::escape::{escape_json_line, Escaping};
use crate::config::LogFormat;
use std::fmt;
use std::io::{self, Write};
use tracing::field::{Field, Visit};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FormatFields, MakeWriter};

/// Install the process's subscriber: level from `RUST_LOG`, else `default_level`. Does nothing
/// when one is already installed. Pingora's `log` records come through it too.
pub fn init(default_level: &str, format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(default_level))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // stderr: stdout is for what a command prints (the demo's URLs, check-config).
    // Colour codes only for a person at a terminal, not in files and log collectors.
    let ansi = io::IsTerminal::is_terminal(&io::stderr());
    let json = format == LogFormat::Json;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(SafeStderr { json });
    let _ = match format {
        LogFormat::Pretty => builder.fmt_fields(EscapingFields).try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .try_init(),
    };
}

/// The text format's fields (`message name=value …`, as tracing-subscriber writes them), each
/// value escaped with [`Escaping`]: `%display` and `?debug` values and the message are
/// written by their own code, which escapes nothing.
///
/// [`escape_controls`]: super::escape::escape_controls
pub struct EscapingFields;

impl<'writer> FormatFields<'writer> for EscapingFields {
    fn format_fields<R: RecordFields>(&self, writer: Writer<'writer>, fields: R) -> fmt::Result {
        let mut visitor = EscapingVisitor {
            writer,
            first: true,
            result: Ok(()),
        };
        fields.record(&mut visitor);
        visitor.result
    }
}

struct EscapingVisitor<'writer> {
    writer: Writer<'writer>,
    first: bool,
    result: fmt::Result,
}

impl EscapingVisitor<'_> {
    /// ` name=` (or nothing for the message) then `value`, escaped as it is written.
    fn write(&mut self, name: &str, value: fmt::Arguments<'_>) {
        // `log.*` fields are the `log` crate's metadata, already shown as the target.
        if self.result.is_err() || name.starts_with("log.") {
            return;
        }
        let pad = if self.first { "" } else { " " };
        self.first = false;
        let name = name.strip_prefix("r#").unwrap_or(name);
        self.result = if name == "message" {
            write!(self.writer, "{pad}")
        } else if self.writer.has_ansi_escapes() {
            write!(self.writer, "{pad}\x1b[3m{name}\x1b[0m\x1b[2m=\x1b[0m")
        } else {
            write!(self.writer, "{pad}{name}=")
        }
        .and_then(|()| fmt::Write::write_fmt(&mut Escaping(&mut self.writer), value));
    }
}

impl Visit for EscapingVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.write("message", format_args!("{value}"));
        } else {
            // Quoted, as tracing-subscriber shows strings.
            self.write(field.name(), format_args!("{value:?}"));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.write(field.name(), format_args!("{value:?}"));
    }
}

/// Stderr, through the last safety pass: passwords inside URLs masked (both formats) and, in
/// JSON, the controls JSON leaves raw escaped. tracing-subscriber writes each event with one
/// `write_all` of the whole line, so every pass sees whole lines.
struct SafeStderr {
    json: bool,
}

impl<'a> MakeWriter<'a> for SafeStderr {
    type Writer = SafeWriter;

    fn make_writer(&'a self) -> SafeWriter {
        SafeWriter { json: self.json }
    }
}

pub struct SafeWriter {
    json: bool,
}

impl Write for SafeWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut err = io::stderr().lock();
        match std::str::from_utf8(buf) {
            Ok(text) => {
                let text = crate::config::redact_urls_in(text);
                let text = if self.json {
                    escape_json_line(&text)
                } else {
                    text
                };
                err.write_all(text.as_bytes())?;
            }
            Err(_) => err.write_all(buf)?,
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        io::stderr().flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer collecting what the text format writes.
    #[derive(Clone, Default)]
    struct Buffer(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn text_fields_are_escaped_and_keep_their_layout() {
        let buffer = Buffer::default();
        let sink = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .without_time()
            .with_writer(move || sink.clone())
            .fmt_fields(EscapingFields)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let user = "eve\u{1b}[2J\r\nforged";
            tracing::info!(user, shown = %user, n = 3, "hello {}", "a\nb");
        });
        let out = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        assert_eq!(out.lines().count(), 1, "{out}");
        assert!(
            out.contains(
                r#"hello a\nb user="eve\u{1b}[2J\r\nforged" shown=eve\u{1b}[2J\r\nforged n=3"#
            ),
            "{out}"
        );
    }

    #[test]
    fn formats_parse() {
        assert_eq!("json".parse(), Ok(LogFormat::Json));
        assert_eq!("Pretty".parse(), Ok(LogFormat::Pretty));
        assert_eq!("xml".parse::<LogFormat>(), Err(()));
    }
}
