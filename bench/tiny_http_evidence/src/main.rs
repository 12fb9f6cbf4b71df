//! Three ways one client stops or exhausts a tiny_http 0.12 server, each measured on a real server
//! on loopback. Run with `cargo run --release` (the first one lowers this process's open-file limit).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

fn server() -> (std::sync::Arc<tiny_http::Server>, u16) {
    let server = std::sync::Arc::new(tiny_http::Server::http("127.0.0.1:0").unwrap());
    let port = server.server_addr().to_ip().unwrap().port();
    let s = std::sync::Arc::clone(&server);
    std::thread::spawn(move || {
        for request in s.incoming_requests() {
            // Answer without reading the body, as a server does for a 404 or a 413.
            let _ = request.respond(tiny_http::Response::from_string("ok"));
        }
    });
    (server, port)
}

fn ask(port: u16, timeout: Duration) -> Result<String, String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(timeout)).unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .map_err(|e| e.to_string())?;
    let mut answer = String::new();
    s.read_to_string(&mut answer).map_err(|e| e.to_string())?;
    Ok(answer.lines().next().unwrap_or("").to_string())
}

fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").unwrap().count()
}

fn main() {
    match std::env::args().nth(1).as_deref() {
        Some("lying-length") => return lying_length(),
        Some("accept-error") => return accept_error(),
        _ => {}
    }
    // 1. Idle connections: one thread each, never timed out.
    let (_server, port) = server();
    let before = threads();
    let idle: Vec<TcpStream> = (0..200)
        .map(|_| TcpStream::connect(("127.0.0.1", port)).unwrap())
        .collect();
    std::thread::sleep(Duration::from_secs(5));
    println!(
        "idle connections: 200 idle clients -> {} more threads in the server, all still open after 5 s (no read timeout)",
        threads() - before
    );
    drop(idle);

    // 2 and 3 run in child processes: one aborts, the other lowers its file limit.
    let me = std::env::current_exe().unwrap();
    let out = Command::new(&me).arg("lying-length").output().unwrap();
    println!(
        "lying Content-Length: the server process exited with {} ({})",
        out.status,
        String::from_utf8_lossy(&out.stderr)
            .lines()
            .find(|l| l.contains("memory allocation") || l.contains("panicked"))
            .unwrap_or("")
    );
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("ulimit -n 64; exec {}", me.display()) + " accept-error")
        .output()
        .unwrap();
    print!("{}", String::from_utf8_lossy(&out.stdout));
}

/// A request declaring a huge body that the application does not read: dropping it drains the body
/// through `vec![0; declared_length]`.
fn lying_length() {
    let (_server, port) = server();
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(b"PUT / HTTP/1.1\r\nhost: x\r\ncontent-length: 4611686018427387904\r\n\r\n0123456789")
        .unwrap();
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    std::thread::sleep(Duration::from_secs(2));
    eprintln!("the server is still running");
}

/// Runs with 64 file descriptors: clients fill the table, accept() fails with EMFILE once, and the
/// accept loop ends for good.
fn accept_error() {
    let (_server, port) = server();
    println!("accept error: before: {:?}", ask(port, Duration::from_secs(2)));
    let mut held = Vec::new();
    while let Ok(s) = TcpStream::connect(("127.0.0.1", port)) {
        held.push(s);
        if held.len() > 100 {
            break;
        }
    }
    std::thread::sleep(Duration::from_millis(500));
    drop(held);
    std::thread::sleep(Duration::from_millis(500));
    let started = Instant::now();
    println!(
        "accept error: after the clients left: {:?} after {:.1} s (the accept loop ended on EMFILE and closed the port for good)",
        ask(port, Duration::from_secs(5)),
        started.elapsed().as_secs_f64()
    );
}
