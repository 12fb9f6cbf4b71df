//! A `scancer serve` process on an ephemeral loopback port, and a small HTTP client that shows the
//! server's bytes as they are.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub struct Server {
    child: Child,
    /// The inference API's port (every API's, without --model-store).
    pub port: u16,
    /// The management API's port, and the metrics API's (the same as `port` without --model-store).
    pub management_port: u16,
    pub metrics_port: u16,
    log: Arc<Mutex<Vec<String>>>,
    lines: Mutex<Receiver<String>>,
}

#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

impl Server {
    /// Starts `scancer serve --port 0 ARGS...` and waits (up to a minute) for it to listen.
    pub fn start(args: &[&str]) -> Server {
        Server::start_with(args, &[])
    }

    pub fn start_with(args: &[&str], env: &[(&str, &str)]) -> Server {
        Server::spawn(
            Command::new(assert_cmd::cargo::cargo_bin("scancer")),
            args,
            env,
        )
    }

    /// Starts `binary serve ...` (another copy of scancer) as `start_with` does.
    pub fn start_binary(binary: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> Server {
        Server::spawn(Command::new(binary), args, env)
    }

    /// Starts the server in `dir` (where TorchServe's layout keeps key_file.json and logs/config),
    /// with LOG_LOCATION there too.
    pub fn start_in(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> Server {
        let command = Command::new(assert_cmd::cargo::cargo_bin("scancer"));
        Server::spawn_in(command, dir, args, env)
    }

    /// `start_in`, for a server that file modes bind: as root (CI), it runs without
    /// CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH (setpriv), so a read-only folder is read-only to it.
    pub fn start_in_as_plain_user(dir: &std::path::Path, args: &[&str]) -> Server {
        let scancer = assert_cmd::cargo::cargo_bin("scancer");
        let root = std::process::Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|out| out.stdout.starts_with(b"0\n"));
        let command = if root {
            let mut setpriv = Command::new("setpriv");
            setpriv
                .arg("--bounding-set=-dac_override,-dac_read_search")
                .arg("--")
                .arg(scancer);
            setpriv
        } else {
            Command::new(scancer)
        };
        Server::spawn_in(command, dir, args, &[])
    }

    fn spawn_in(
        mut command: Command,
        dir: &std::path::Path,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Server {
        command
            .current_dir(dir)
            .env("LOG_LOCATION", dir.join("logs"));
        command.args(["serve", "--port", "0", "--grpc-port", "0"]);
        command.args(["--management-port", "0", "--metrics-port", "0"]);
        command.args(["--grpc-management-port", "0"]);
        Server::spawn_command(command, args, env)
    }

    /// `scancer ARGS...` in `dir`, exactly as given (no port of its own): for command lines that
    /// must run unchanged, such as KServe's.
    pub fn start_exactly(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> Server {
        let mut command = Command::new(assert_cmd::cargo::cargo_bin("scancer"));
        command
            .current_dir(dir)
            .env("LOG_LOCATION", dir.join("logs"));
        Server::spawn_command(command, args, env)
    }

    /// Starts the server with at most `files` open file descriptors (`ulimit -n`).
    pub fn start_with_file_limit(args: &[&str], files: u32) -> Server {
        let mut shell = Command::new("sh");
        shell
            .arg("-c")
            .arg(format!("ulimit -n {files} && exec \"$0\" \"$@\""))
            .arg(assert_cmd::cargo::cargo_bin("scancer"));
        Server::spawn(shell, args, &[])
    }

    fn spawn(mut command: Command, args: &[&str], env: &[(&str, &str)]) -> Server {
        command
            .current_dir(super::root())
            .args(["serve", "--port", "0", "--grpc-port", "0"])
            .args(["--management-port", "0", "--metrics-port", "0"]);
        Server::spawn_command(command, args, env)
    }

    fn spawn_command(mut command: Command, args: &[&str], env: &[(&str, &str)]) -> Server {
        let mut child = command
            .args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("scancer serve starts");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, lines) = channel();
        let kept = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                kept.lock().unwrap().push(line.clone());
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        // "listening on http://127.0.0.1:PORT (inference, management, metrics)", one line a port.
        let mut ports: [Option<u16>; 3] = [None; 3];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match lines.recv_timeout(left) {
                Ok(line) => {
                    let listening = line
                        .find("listening on http://127.0.0.1:")
                        .map(|at| at + 30)
                        .or_else(|| {
                            line.find("listening on https://127.0.0.1:")
                                .map(|at| at + 31)
                        })
                        .or_else(|| line.find("listening on http://0.0.0.0:").map(|at| at + 28));
                    if let Some(at) = listening {
                        let rest = &line[at..];
                        let end = rest.find(' ').unwrap_or(rest.len());
                        let port: u16 = rest[..end].parse().expect("a port");
                        for (k, role) in ["inference", "management", "metrics"].iter().enumerate() {
                            if rest.contains(role) {
                                ports[k] = Some(port);
                            }
                        }
                    }
                    if let [Some(port), Some(management_port), Some(metrics_port)] = ports {
                        return Server {
                            child,
                            port,
                            management_port,
                            metrics_port,
                            log,
                            lines: Mutex::new(lines),
                        };
                    }
                }
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "scancer serve did not start: {:?}",
                        log.lock().unwrap().join("\n")
                    );
                }
            }
        }
    }

    /// The gRPC port, from the start-up log (which prints it after the HTTP port).
    pub fn grpc_port(&self) -> u16 {
        self.logged_port(&["gRPC on 127.0.0.1:", "gRPC over TLS on 127.0.0.1:"])
    }

    /// The gRPC management port (with a model store), from the start-up log.
    pub fn grpc_management_port(&self) -> u16 {
        self.logged_port(&[
            "gRPC management on 127.0.0.1:",
            "gRPC management over TLS on 127.0.0.1:",
        ])
    }

    /// The port after the first of `prefixes` in the log, waiting up to 10 s for it.
    fn logged_port(&self, prefixes: &[&str]) -> u16 {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let log = self.log();
            let found = prefixes
                .iter()
                .find_map(|p| log.find(p).map(|at| at + p.len()));
            if let Some(at) = found {
                let rest = &log[at..];
                let end = rest
                    .find(|c: char| !c.is_ascii_digit())
                    .unwrap_or(rest.len());
                return rest[..end].parse().expect("a port");
            }
            assert!(Instant::now() < deadline, "no {prefixes:?} in {log}");
            let _ = self
                .lines
                .lock()
                .unwrap()
                .recv_timeout(Duration::from_millis(100));
        }
    }

    /// The libraries mapped into the server's memory (from /proc/PID/maps), each once.
    pub fn mapped_libraries(&self) -> Vec<String> {
        let maps = std::fs::read_to_string(format!("/proc/{}/maps", self.child.id())).unwrap();
        let mut libraries: Vec<String> = maps
            .lines()
            .filter_map(|l| l.split_whitespace().nth(5))
            .filter(|p| p.contains(".so"))
            .map(str::to_owned)
            .collect();
        libraries.sort();
        libraries.dedup();
        libraries
    }

    /// The server's resident memory in bytes.
    pub fn resident_bytes(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let kib: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap();
        kib * 1024
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    pub fn connect(&self) -> TcpStream {
        connect(self.port)
    }

    /// One request to another of the server's ports, on its own connection.
    pub fn request_to(
        &self,
        port: u16,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Reply {
        let mut stream = connect(port);
        send(&mut stream, method, path, headers, body, true);
        read_reply(&mut stream).expect("a reply")
    }

    /// SIGKILL: the process ends at once, as in a crash.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn connect(port: u16) -> TcpStream {
    {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connects");
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        stream
    }
}

impl Server {
    /// One request on its own connection (`Connection: close`).
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Reply {
        let mut stream = self.connect();
        send(&mut stream, method, path, headers, body, true);
        read_reply(&mut stream).expect("a reply")
    }

    pub fn get(&self, path: &str) -> Reply {
        self.request("GET", path, &[], b"")
    }

    pub fn put(&self, path: &str, body: &[u8]) -> Reply {
        self.request("PUT", path, &[], body)
    }

    /// SIGTERM, then the exit code (waiting up to a minute) and the whole log.
    pub fn stop(mut self) -> (i32, String) {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                // Let the reader thread take the last lines.
                let lines = self.lines.lock().unwrap();
                while lines.recv_timeout(Duration::from_secs(5)).is_ok() {}
                drop(lines);
                return (status.code().unwrap_or(-1), self.log());
            }
            assert!(Instant::now() < deadline, "the server did not stop");
            let _ = self
                .lines
                .lock()
                .unwrap()
                .recv_timeout(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn send(
    stream: &mut TcpStream,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    close: bool,
) {
    let mut head = format!("{method} {path} HTTP/1.1\r\nhost: 127.0.0.1\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if !headers.iter().any(|(n, _)| {
        n.eq_ignore_ascii_case("transfer-encoding") || n.eq_ignore_ascii_case("content-length")
    }) {
        head.push_str(&format!("content-length: {}\r\n", body.len()));
    }
    if close {
        head.push_str("connection: close\r\n");
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
}

/// Reads one response (head, then a Content-Length body).
pub fn read_reply(stream: &mut TcpStream) -> std::io::Result<Reply> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte)? == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("closed after {:?}", String::from_utf8_lossy(&head)),
            ));
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (n, v) = l.split_once(':').unwrap();
            (n.trim().to_ascii_lowercase(), v.trim().to_string())
        })
        .collect();
    let length: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .map_or(0, |(_, v)| v.parse().unwrap());
    let mut body = vec![0; length];
    stream.read_exact(&mut body)?;
    Ok(Reply {
        status,
        headers,
        body,
    })
}

/// A multipart/form-data body with one file field.
pub fn multipart(field: &str, data: &[u8]) -> (String, Vec<u8>) {
    let boundary = "scancer-test-boundary-7MA4YWxk";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"patch.png\"\r\nContent-Type: image/png\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(data);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}
