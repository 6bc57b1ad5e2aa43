//! Where the log lines go: standard output, written in batches by a thread
//! of its own, so that a request never waits for the terminal, the pipe or
//! the file behind it.
//!
//! A line is formatted by the thread that logs it and appended to a shared
//! buffer (a lock held for a copy); the `log-writer` thread wakes every
//! [`FLUSH_EVERY`] and writes what has gathered in one `write`. Nothing is
//! dropped: a logger that finds [`HIGH_WATER`] bytes waiting writes them
//! out itself. [`Flusher`], held until the service exits, writes out the
//! rest when dropped.
//!
//! Why not `tracing-appender`'s non-blocking writer: it hands each line
//! over a channel and wakes its thread for it whenever that thread is
//! idle, which under load is once or twice per request; `make profile`
//! measured that thread at 8 % of the service's CPU time, nearly all of it
//! in the kernel, waking and sleeping. Waking on a timer costs the same at
//! any load.

use std::{
    io::{self, Write},
    sync::{Arc, Condvar, Mutex, MutexGuard},
    thread::JoinHandle,
    time::Duration,
};

use tracing_subscriber::fmt::MakeWriter;

/// How long a line waits, at most, before it is written (under a light
/// load; under a heavy one, [`HIGH_WATER`] comes first).
pub const FLUSH_EVERY: Duration = Duration::from_millis(20);
/// Waiting lines past this many bytes are written at once, by the logger.
pub const HIGH_WATER: usize = 1024 * 1024;

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
}

#[derive(Default)]
struct State {
    waiting: Vec<u8>,
    closing: bool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A thread that panicked while appending leaves at worst a partial
        // line: keep logging.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The `MakeWriter` of the log layer.
#[derive(Clone)]
pub struct LogWriter {
    shared: Arc<Shared>,
}

/// Stops the `log-writer` thread when dropped, once it has written out
/// every line.
pub struct Flusher {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

/// A writer to standard output and the thread that writes for it.
pub fn stdout() -> (LogWriter, Flusher) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State::default()),
        wake: Condvar::new(),
    });
    let writer = LogWriter {
        shared: shared.clone(),
    };
    let for_thread = shared.clone();
    let thread = std::thread::Builder::new()
        .name("log-writer".into())
        .spawn(move || run(&for_thread, &mut io::stdout()));
    let thread = match thread {
        Ok(thread) => Some(thread),
        Err(err) => {
            // Then every line is written by its logger, as at shutdown:
            // slower, but nothing is lost or held back.
            eprintln!("cannot start the log writer thread ({err}); writing log lines as they come");
            shared.lock().closing = true;
            None
        }
    };
    (writer, Flusher { shared, thread })
}

/// The `log-writer` thread. Two buffers take turns: the loggers fill one
/// while this thread writes the other out, so that in a steady state no
/// logger grows a buffer (copying it) while it holds the lock.
fn run(shared: &Shared, out: &mut impl Write) {
    let mut batch = Vec::new();
    loop {
        let closing = {
            let mut state = shared.lock();
            if !state.closing {
                state = shared
                    .wake
                    .wait_timeout(state, FLUSH_EVERY)
                    .map_or_else(|poisoned| poisoned.into_inner().0, |(state, _)| state);
            }
            std::mem::swap(&mut state.waiting, &mut batch);
            state.closing
        };
        write_out(out, &batch);
        batch.clear();
        if closing {
            return;
        }
    }
}

fn write_out(out: &mut impl Write, batch: &[u8]) {
    if batch.is_empty() {
        return;
    }
    // Nowhere to report a failure to write the log: it is dropped.
    let _ = out.write_all(batch).and_then(|()| out.flush());
}

impl Drop for Flusher {
    fn drop(&mut self) {
        self.shared.lock().closing = true;
        self.shared.wake.notify_all();
        match self.thread.take() {
            Some(thread) => {
                let _ = thread.join();
            }
            None => write_out(
                &mut io::stdout(),
                &std::mem::take(&mut self.shared.lock().waiting),
            ),
        }
    }
}

/// One line's writer (the log layer asks for one per line).
pub struct Line<'a> {
    shared: &'a Shared,
}

impl<'a> MakeWriter<'a> for LogWriter {
    type Writer = Line<'a>;

    fn make_writer(&'a self) -> Line<'a> {
        Line {
            shared: &self.shared,
        }
    }
}

impl Write for Line<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut state = self.shared.lock();
        state.waiting.extend_from_slice(buf);
        if state.waiting.len() >= HIGH_WATER || state.closing {
            let batch = std::mem::take(&mut state.waiting);
            drop(state);
            write_out(&mut io::stdout(), &batch);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer into memory that the test can read.
    #[derive(Clone, Default)]
    struct Memory(Arc<Mutex<Vec<u8>>>);

    impl Write for Memory {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn lines_are_written_in_order_within_the_flush_period_and_all_at_the_end() {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
        });
        let memory = Memory::default();
        let thread = {
            let (shared, mut out) = (shared.clone(), memory.clone());
            std::thread::spawn(move || run(&shared, &mut out))
        };
        let writer = LogWriter {
            shared: shared.clone(),
        };
        writer.make_writer().write_all(b"one\n").unwrap();
        writer.make_writer().write_all(b"two\n").unwrap();
        // Written by the thread, without a flush: wait for it (a few
        // periods; at most 5 s on a loaded machine).
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while memory.0.lock().unwrap().len() < 8 && std::time::Instant::now() < deadline {
            std::thread::sleep(FLUSH_EVERY);
        }
        assert_eq!(&*memory.0.lock().unwrap(), b"one\ntwo\n");

        writer.make_writer().write_all(b"three\n").unwrap();
        let flusher = Flusher {
            shared,
            thread: Some(thread),
        };
        drop(flusher);
        assert_eq!(&*memory.0.lock().unwrap(), b"one\ntwo\nthree\n");
    }
}
