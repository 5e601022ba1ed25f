//! The log subscriber: `[log] format = "pretty"` (human-readable lines) or `"json"` (one JSON
//! object per line, fields at the top level, for log pipelines). Logs go to stderr.
//!
//! Every line is made safe here, once, for every field present and future: values are
//! escaped by [`EscapingFields`] (text format) or after JSON encoding (JSON format) so text
//! from clients or GitHub cannot forge lines or drive a terminal, and passwords inside URLs are
//! masked by the writer (see `config::redact_urls_in`).
//!
//! Access lines ([`ACCESS_TARGET`]) are written in batches off the request path
//! ([`super::log_buffer`]); every other line is written at once, after them. [`flush`] writes
//! what is waiting: the process calls it before it exits.

use super::escape::{escape_json_line, Escaping};
use super::log_buffer::{Limits, LogBuffer};
use crate::config::LogFormat;
use std::fmt;
use std::io::{self, Write};
use std::sync::{Arc, OnceLock};
use tracing::field::{Field, Visit};
use tracing::Metadata;
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
        .with_writer(stderr_lines(json));
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

/// The target of the access log: one line per request, written in batches.
pub const ACCESS_TARGET: &str = "gatehouse::access";

/// Stderr's batch of access lines, and whether its writer thread runs (when it could not
/// start, every line is written at once, as it comes).
static STDERR: OnceLock<(Arc<LogBuffer<io::Stderr>>, bool)> = OnceLock::new();

fn stderr_lines(json: bool) -> SafeLines<io::Stderr> {
    let (batch, writing) = STDERR.get_or_init(|| {
        let batch = Arc::new(LogBuffer::new(io::stderr(), Limits::ACCESS_LOG));
        let writing = batch.start_writer().is_ok();
        (batch, writing)
    });
    SafeLines {
        json,
        batch,
        batching: *writing,
    }
}

/// Write the access lines still waiting. Called before the process exits; lines are otherwise
/// at most [`Limits::ACCESS_LOG`]`.every` late.
pub fn flush() {
    if let Some((batch, _)) = STDERR.get() {
        // Nowhere to report a failed write to stderr.
        let _ = batch.flush();
    }
}

/// Where lines go, through the last safety pass: passwords inside URLs masked (both formats)
/// and, in JSON, the controls JSON leaves raw escaped. tracing-subscriber writes each event with
/// one `write_all` of the whole line, so every pass sees whole lines, and the batch holds
/// whole lines. Access lines ([`ACCESS_TARGET`]) join the batch; the others are written at
/// once, after it.
struct SafeLines<W: 'static> {
    json: bool,
    batch: &'static LogBuffer<W>,
    /// A writer thread empties `batch`; without one, access lines are written at once too.
    batching: bool,
}

impl<'a, W: Write + 'static> MakeWriter<'a> for SafeLines<W> {
    type Writer = SafeWriter<W>;

    fn make_writer(&'a self) -> SafeWriter<W> {
        self.writer(false)
    }

    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> SafeWriter<W> {
        self.writer(self.batching && meta.target() == ACCESS_TARGET)
    }
}

impl<W: Write + 'static> SafeLines<W> {
    fn writer(&self, later: bool) -> SafeWriter<W> {
        SafeWriter {
            json: self.json,
            batch: self.batch,
            later,
        }
    }
}

pub struct SafeWriter<W: 'static> {
    json: bool,
    batch: &'static LogBuffer<W>,
    /// Append to the batch instead of writing now.
    later: bool,
}

impl<W: Write> SafeWriter<W> {
    fn emit(&self, line: &[u8]) -> io::Result<()> {
        if self.later {
            self.batch.append(line)
        } else {
            self.batch.write_now(line)
        }
    }
}

impl<W: Write> Write for SafeWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match std::str::from_utf8(buf) {
            Ok(text) => {
                let text = crate::config::redact_urls_in(text);
                let text = if self.json {
                    escape_json_line(&text)
                } else {
                    text
                };
                self.emit(text.as_bytes())?;
            }
            Err(_) => self.emit(buf)?,
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        // An access line waits for its batch; anything else is already out.
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer collecting what the text format writes.
    #[derive(Clone, Default)]
    struct Buffer(Arc<std::sync::Mutex<Vec<u8>>>);

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

    /// A subscriber writing through [`SafeLines`] into `buffer`, with a batch no thread empties
    /// (so what is written at once and what waits can be told apart).
    fn batched(buffer: &Buffer, json: bool) -> (tracing::Dispatch, &'static LogBuffer<Buffer>) {
        let limits = Limits {
            every: std::time::Duration::from_secs(3600),
            ..Limits::ACCESS_LOG
        };
        let batch: &'static LogBuffer<Buffer> =
            Box::leak(Box::new(LogBuffer::new(buffer.clone(), limits)));
        let lines = SafeLines {
            json,
            batch,
            batching: true,
        };
        let builder = tracing_subscriber::fmt()
            .with_ansi(false)
            .without_time()
            .with_writer(lines);
        let dispatch = if json {
            builder.json().flatten_event(true).finish().into()
        } else {
            builder.fmt_fields(EscapingFields).finish().into()
        };
        (dispatch, batch)
    }

    fn text(buffer: &Buffer) -> String {
        String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap()
    }

    #[test]
    fn access_lines_wait_for_their_batch_and_other_lines_keep_the_order() {
        for json in [false, true] {
            let buffer = Buffer::default();
            let (dispatch, batch) = batched(&buffer, json);
            tracing::dispatcher::with_default(&dispatch, || {
                tracing::info!(target: ACCESS_TARGET, path = "/one", status = 200);
                assert_eq!(text(&buffer), "", "the access line waits");
                tracing::warn!("upstream unavailable");
                tracing::info!(target: ACCESS_TARGET, path = "/two", status = 502);
            });
            let out = text(&buffer);
            assert_eq!(out.lines().count(), 2, "{out}");
            assert!(out.contains("/one") && out.contains("upstream unavailable"));
            assert!(!out.contains("/two"), "{out}");
            batch.flush().unwrap();
            let out = text(&buffer);
            let lines: Vec<&str> = out.lines().collect();
            assert_eq!(lines.len(), 3, "{out}");
            for (line, needle) in lines.iter().zip(["/one", "upstream unavailable", "/two"]) {
                assert!(line.contains(needle), "{needle} out of order:\n{out}");
                if json {
                    serde_json::from_str::<serde_json::Value>(line).unwrap();
                }
            }
        }
    }

    #[test]
    fn access_lines_are_made_safe_before_they_wait() {
        let buffer = Buffer::default();
        let (dispatch, batch) = batched(&buffer, false);
        tracing::dispatcher::with_default(&dispatch, || {
            tracing::info!(
                target: ACCESS_TARGET,
                path = "/x\r\nforged",
                via = "redis://:hunter2@cache:6379"
            );
        });
        batch.flush().unwrap();
        let out = text(&buffer);
        assert_eq!(out.lines().count(), 1, "{out}");
        assert!(out.contains(r"/x\r\nforged"), "{out}");
        assert!(!out.contains("hunter2") && out.contains("***"), "{out}");
    }

    #[test]
    fn formats_parse() {
        assert_eq!("json".parse(), Ok(LogFormat::Json));
        assert_eq!("Pretty".parse(), Ok(LogFormat::Pretty));
        assert_eq!("xml".parse::<LogFormat>(), Err(()));
    }
}
