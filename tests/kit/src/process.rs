//! The processes a test starts: a command whose output goes to a log file,
//! started (and started again) when the test says, sent signals, stopped or
//! killed, and killed when dropped; and the processes' JSON log lines.

use std::{
    fs::OpenOptions,
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    time::{Duration, Instant},
};

use serde_json::Value;

/// A command started by the test, with its standard output and error
/// appended to a log file (kept across restarts). Killed (SIGKILL) when
/// dropped, if still running.
pub struct Process {
    name: String,
    command: Command,
    log: PathBuf,
    child: Option<Child>,
    frozen: bool,
}

impl Process {
    /// `command`, not started yet, known as `name` in messages, its output
    /// to go to `log`. Its standard input is empty.
    pub fn new(name: impl Into<String>, mut command: Command, log: impl Into<PathBuf>) -> Self {
        command.stdin(Stdio::null());
        Self {
            name: name.into(),
            command,
            log: log.into(),
            child: None,
            frozen: false,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The command, to change what the next [`Process::spawn`] starts
    /// (e.g. another value of a variable).
    pub fn command(&mut self) -> &mut Command {
        &mut self.command
    }

    /// Starts the command, its output appended to the log (again, if it
    /// was stopped, killed or has exited).
    pub fn spawn(&mut self) {
        if self.child.is_some() {
            assert!(self.exited().is_some(), "{} is already running", self.name);
        }
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap_or_else(|e| panic!("cannot open {}: {e}", self.log.display()));
        let child = self
            .command
            .stdout(log.try_clone().expect("a second handle of the log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start {} ({}): {e}",
                    self.name,
                    Path::new(self.command.get_program()).display()
                )
            });
        self.child = Some(child);
        self.frozen = false;
    }

    /// Whether it was started and not stopped or killed since (it may have
    /// exited by itself: see [`Process::exited`]).
    pub fn is_started(&self) -> bool {
        self.child.is_some()
    }

    /// Its process id, while started.
    pub fn id(&self) -> Option<i32> {
        self.child.as_ref().map(|child| child.id() as i32)
    }

    /// Sends `signal` (e.g. `libc::SIGTERM`), if started.
    pub fn signal(&self, signal: i32) {
        if let Some(pid) = self.id() {
            send_signal(pid, signal);
        }
    }

    /// SIGSTOP: its connections stay open, nothing answers.
    pub fn freeze(&mut self) {
        self.signal(libc::SIGSTOP);
        self.frozen = true;
    }

    /// SIGCONT, after [`Process::freeze`].
    pub fn thaw(&mut self) {
        self.signal(libc::SIGCONT);
        self.frozen = false;
    }

    /// SIGKILL (thawed first, if frozen), and waits for it.
    pub fn kill(&mut self) {
        if self.frozen {
            self.thaw();
        }
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, and waits for it to exit, however long it takes.
    pub fn stop(&mut self) -> ExitStatus {
        self.signal(libc::SIGTERM);
        let mut child = self
            .child
            .take()
            .unwrap_or_else(|| panic!("{} is not running", self.name));
        child.wait().expect("wait")
    }

    /// SIGTERM, and waits up to `limit` for it to exit: its status, or None
    /// if it still runs (it is still this process's to stop or kill).
    pub fn stop_within(&mut self, limit: Duration) -> Option<ExitStatus> {
        self.signal(libc::SIGTERM);
        let deadline = Instant::now() + limit;
        loop {
            let child = self.child.as_mut()?;
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// SIGTERM, up to `limit` for it to exit, then SIGKILL: for a process
    /// that must stop its own (nginx's master, its workers).
    pub fn terminate(&mut self, limit: Duration) {
        if self.stop_within(limit).is_none() {
            self.kill();
        }
    }

    /// Its exit status, if it was started and has exited by itself.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.as_mut()?.try_wait().ok().flatten()
    }

    /// Panics, with its log, if it was started and has exited since.
    #[track_caller]
    pub fn assert_not_exited(&mut self) {
        if let Some(status) = self.exited() {
            panic!("{} exited ({status}):\n{}", self.name, self.log());
        }
    }

    /// Its log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Its JSON log lines so far (`LOG_FORMAT=json`); lines that are not
    /// JSON objects are left out.
    pub fn log_lines(&self) -> Vec<Value> {
        json_lines(&self.log())
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Sends `signal` to the process `pid`: one this test started, itself or
/// through a script.
pub fn send_signal(pid: i32, signal: i32) {
    // SAFETY: kill(2) only sends a signal; the callers name processes that
    // the test started.
    unsafe { libc::kill(pid, signal) };
}

/// Whether a process with this id exists (a zombie counts as gone).
pub fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // "pid (comm) S ...": the state follows the command's closing parenthesis.
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// The command name of a process ("" if it is gone).
pub fn command_of(pid: i32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|comm| comm.trim().to_owned())
        .unwrap_or_default()
}

/// The JSON objects among `text`'s lines.
pub fn json_lines(text: &str) -> Vec<Value> {
    text.lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(Value::is_object)
        .collect()
}

/// The request id a service's JSON log line belongs to: the line's own
/// `request_id` field, or its request span's.
pub fn line_request_id(line: &Value) -> Option<&str> {
    line["request_id"]
        .as_str()
        .or_else(|| line["span"]["request_id"].as_str())
}
