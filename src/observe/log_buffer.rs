//! The access log's batch. An access line per request, each written with its own `write(2)` on
//! the request thread, cost about 5 µs of CPU per request (bench/run.sh). Access lines are
//! appended here instead, and a background thread writes them in one `write` per batch; every
//! other line is written at once, after whatever is waiting, so the output keeps the order in
//! which lines were made.
//!
//! Lines are appended whole (tracing-subscriber hands over one event per `write`) and written
//! whole: a batch is a run of whole lines, and batches reach the output in order because whoever
//! writes holds the output from taking the batch to the end of its write.

use std::io::{self, Write};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError, Weak};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

/// When to write a batch, and when the appending thread must write it itself.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// How long the first line of a batch waits at most.
    pub every: Duration,
    /// A batch this large is written without waiting for `every`.
    pub soft: usize,
    /// A batch this large is written by the thread that appends to it: back-pressure when the
    /// output is slower than the lines come (a line is never dropped).
    pub hard: usize,
}

impl Limits {
    /// 100 ms: late enough that a busy gate makes ten writes a second instead of one per request
    /// (and one wake-up of the writer per batch), soon enough for someone tailing the log not to
    /// notice. 64 KiB: a few hundred lines, a size a pipe takes in one write. 1 MiB: a bounded
    /// memory cost when stderr blocks; the request threads then wait on it as they did before.
    pub const ACCESS_LOG: Limits = Limits {
        every: Duration::from_millis(100),
        soft: 64 * 1024,
        hard: 1024 * 1024,
    };
}

/// Lines waiting to be written to `W`.
pub struct LogBuffer<W> {
    /// Whole lines, in the order they were appended.
    pending: Mutex<Vec<u8>>,
    /// The output, and the spare batch that is swapped with `pending`. Locked before `pending`
    /// (never the other way round) by whoever writes.
    out: Mutex<Out<W>>,
    limits: Limits,
    /// The background writer, once started: woken by the first line of a batch and by a batch
    /// reaching `limits.soft`.
    writer: OnceLock<Thread>,
}

struct Out<W> {
    sink: W,
    spare: Vec<u8>,
}

/// A poisoned lock only means another thread panicked while writing a log line: the bytes are
/// still whole lines (appends are single `extend_from_slice` calls), so carry on.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<W: Write> LogBuffer<W> {
    pub fn new(sink: W, limits: Limits) -> LogBuffer<W> {
        LogBuffer {
            pending: Mutex::new(Vec::new()),
            out: Mutex::new(Out {
                sink,
                spare: Vec::new(),
            }),
            limits,
            writer: OnceLock::new(),
        }
    }

    /// Add `line` to the batch (no system call unless the batch is over `limits.hard`).
    pub fn append(&self, line: &[u8]) -> io::Result<()> {
        let (before, after) = {
            let mut pending = lock(&self.pending);
            let before = pending.len();
            pending.extend_from_slice(line);
            (before, pending.len())
        };
        if after >= self.limits.hard {
            return self.flush();
        }
        // One wake-up per batch (its first line) and one when it fills, not one per line.
        if before == 0 || (before < self.limits.soft && after >= self.limits.soft) {
            if let Some(writer) = self.writer.get() {
                writer.unpark();
            }
        }
        Ok(())
    }

    /// Write what is waiting, then `line`, in one write.
    pub fn write_now(&self, line: &[u8]) -> io::Result<()> {
        let mut out = lock(&self.out);
        self.write_locked(&mut out, line)
    }

    /// Write what is waiting.
    pub fn flush(&self) -> io::Result<()> {
        self.write_now(&[])
    }

    fn write_locked(&self, out: &mut Out<W>, line: &[u8]) -> io::Result<()> {
        std::mem::swap(&mut *lock(&self.pending), &mut out.spare);
        out.spare.extend_from_slice(line);
        let written = if out.spare.is_empty() {
            Ok(())
        } else {
            out.sink
                .write_all(&out.spare)
                .and_then(|()| out.sink.flush())
        };
        // Written or not (a closed stderr), the batch is done with: keep the room, not the lines.
        out.spare.clear();
        if out.spare.capacity() > 2 * self.limits.hard {
            out.spare.shrink_to(self.limits.hard);
        }
        written
    }

    fn is_empty(&self) -> bool {
        lock(&self.pending).is_empty()
    }

    fn len(&self) -> usize {
        lock(&self.pending).len()
    }
}

impl<W: Write + Send + 'static> LogBuffer<W> {
    /// Start the background writer. It holds only a weak reference: it stops once the buffer
    /// is dropped.
    pub fn start_writer(self: &Arc<Self>) -> io::Result<thread::JoinHandle<()>> {
        let weak = Arc::downgrade(self);
        thread::Builder::new()
            .name("gatehouse-log".into())
            .spawn(move || run_writer(weak))
    }

    /// Sleep until the batch has waited `limits.every` or has reached `limits.soft`.
    fn wait_for_batch(&self) {
        let deadline = Instant::now() + self.limits.every;
        loop {
            let now = Instant::now();
            if now >= deadline || self.len() >= self.limits.soft {
                return;
            }
            thread::park_timeout(deadline - now);
        }
    }
}

fn run_writer<W: Write + Send + 'static>(weak: Weak<LogBuffer<W>>) {
    // Registered from this thread, before its first look at the batch: a line appended before
    // the registration is seen below, one appended after it wakes the thread.
    if let Some(buffer) = weak.upgrade() {
        let _ = buffer.writer.set(thread::current());
    }
    while let Some(buffer) = weak.upgrade() {
        if buffer.is_empty() {
            // Idle: no timer, no wake-up until a line comes (or the buffer is dropped).
            drop(buffer);
            thread::park();
            continue;
        }
        buffer.wait_for_batch();
        // A write error (stderr closed) cannot be reported anywhere else.
        let _ = buffer.flush();
    }
}

impl<W> Drop for LogBuffer<W> {
    fn drop(&mut self) {
        // Let the writer see that the buffer is gone and stop.
        if let Some(writer) = self.writer.get() {
            writer.unpark();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An output that records each write separately.
    #[derive(Clone, Default)]
    struct Writes(Arc<Mutex<Vec<Vec<u8>>>>);

    impl Write for Writes {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().push(buf.to_vec());
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Writes {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().concat()).unwrap()
        }
        fn count(&self) -> usize {
            self.0.lock().unwrap().len()
        }
    }

    const SLOW: Limits = Limits {
        every: Duration::from_secs(3600),
        soft: 1 << 20,
        hard: 1 << 21,
    };

    fn buffer(limits: Limits) -> (Arc<LogBuffer<Writes>>, Writes) {
        let out = Writes::default();
        (Arc::new(LogBuffer::new(out.clone(), limits)), out)
    }

    #[test]
    fn an_access_line_waits_and_a_flush_writes_it() {
        let (log, out) = buffer(SLOW);
        log.append(b"access 1\n").unwrap();
        log.append(b"access 2\n").unwrap();
        assert_eq!(out.count(), 0, "nothing written on the appending thread");
        log.flush().unwrap();
        assert_eq!(out.text(), "access 1\naccess 2\n");
        assert_eq!(out.count(), 1, "one write for the batch");
        log.flush().unwrap();
        assert_eq!(out.count(), 1, "nothing waiting, nothing written");
    }

    #[test]
    fn a_line_written_at_once_comes_after_the_access_lines_before_it() {
        let (log, out) = buffer(SLOW);
        log.append(b"access 1\n").unwrap();
        log.write_now(b"WARN something\n").unwrap();
        log.append(b"access 2\n").unwrap();
        log.flush().unwrap();
        assert_eq!(out.text(), "access 1\nWARN something\naccess 2\n");
    }

    #[test]
    fn the_appending_thread_writes_the_batch_itself_past_the_hard_bound() {
        let (log, out) = buffer(Limits {
            every: Duration::from_secs(3600),
            soft: 16,
            hard: 32,
        });
        let line = b"0123456789abcde\n";
        log.append(line).unwrap();
        assert_eq!(out.count(), 0);
        log.append(line).unwrap();
        assert_eq!(
            out.text().len(),
            32,
            "written without a writer thread or a flush"
        );
    }

    #[test]
    fn the_writer_thread_writes_a_batch_within_the_interval() {
        let (log, out) = buffer(Limits {
            every: Duration::from_millis(20),
            soft: 1 << 20,
            hard: 1 << 21,
        });
        log.start_writer().unwrap();
        // Idle first: the writer parks until a line comes.
        thread::sleep(Duration::from_millis(50));
        log.append(b"access 1\n").unwrap();
        log.append(b"access 2\n").unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while out.text() != "access 1\naccess 2\n" {
            assert!(Instant::now() < deadline, "not written: {:?}", out.text());
            thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn a_full_batch_wakes_the_writer_before_the_interval() {
        let (log, out) = buffer(Limits {
            every: Duration::from_secs(3600),
            soft: 64,
            hard: 1 << 20,
        });
        log.start_writer().unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while log.writer.get().is_none() {
            assert!(Instant::now() < deadline);
            thread::sleep(Duration::from_millis(1));
        }
        for _ in 0..8 {
            log.append(b"0123456789\n").unwrap();
        }
        while out.text().len() < 88 {
            assert!(Instant::now() < deadline, "not written: {:?}", out.text());
            thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn lines_from_many_threads_stay_whole_and_in_each_threads_order() {
        let (log, out) = buffer(Limits {
            every: Duration::from_millis(1),
            soft: 256,
            hard: 1024,
        });
        log.start_writer().unwrap();
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let log = Arc::clone(&log);
                thread::spawn(move || {
                    for i in 0..2000 {
                        let line = format!("t{t} line {i:05} {}\n", "x".repeat(i % 50));
                        if i % 100 == 0 {
                            log.write_now(line.as_bytes()).unwrap();
                        } else {
                            log.append(line.as_bytes()).unwrap();
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        log.flush().unwrap();
        let text = out.text();
        let mut next = [0usize; 4];
        for line in text.lines() {
            let mut words = line.split(' ');
            let t: usize = words.next().unwrap()[1..].parse().unwrap();
            assert_eq!(words.next(), Some("line"), "{line:?}");
            let i: usize = words.next().unwrap().parse().unwrap();
            assert_eq!(words.next().unwrap_or(""), "x".repeat(i % 50), "{line:?}");
            assert_eq!(i, next[t], "thread {t}'s lines out of order");
            next[t] += 1;
        }
        assert_eq!(next, [2000; 4], "every line written once");
    }

    #[test]
    fn the_writer_thread_stops_when_the_buffer_is_dropped() {
        let (log, _out) = buffer(SLOW);
        let writer = log.start_writer().unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while log.writer.get().is_none() {
            assert!(Instant::now() < deadline);
            thread::sleep(Duration::from_millis(1));
        }
        drop(log);
        while !writer.is_finished() {
            assert!(
                Instant::now() < deadline,
                "the writer thread is still running"
            );
            thread::sleep(Duration::from_millis(1));
        }
    }
}
