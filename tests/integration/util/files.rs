//! Files for the tests: a file server on loopback for registrations from URLs (it serves a folder
//! over HTTP/1.1, one request a connection, and can stall halfway through a file, as a download a
//! crash interrupts), and a small tmpfs to fill up, a full disk.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

pub struct FileServer {
    pub url: String,
    /// Sends half of every file, then holds the connection until dropped.
    pub stall: Arc<AtomicBool>,
    /// Set once a stalled transfer has sent its first half.
    pub stalled: Arc<AtomicBool>,
}

impl FileServer {
    pub fn serve(root: PathBuf) -> FileServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let stall = Arc::new(AtomicBool::new(false));
        let stalled = Arc::new(AtomicBool::new(false));
        let (stall_flag, stalled_flag) = (Arc::clone(&stall), Arc::clone(&stalled));
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let root = root.clone();
                let (stall, stalled) = (Arc::clone(&stall_flag), Arc::clone(&stalled_flag));
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    let mut line = String::new();
                    if reader.read_line(&mut line).is_err() {
                        return;
                    }
                    // The rest of the head.
                    let mut header = String::new();
                    while reader.read_line(&mut header).is_ok_and(|n| n > 2) {
                        header.clear();
                    }
                    let path = line.split(' ').nth(1).unwrap_or("/");
                    let path = path
                        .split('?')
                        .next()
                        .unwrap_or("/")
                        .trim_start_matches('/');
                    match std::fs::read(root.join(path)) {
                        Ok(bytes) => {
                            let head = format!(
                                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\ncontent-type: application/octet-stream\r\nconnection: close\r\n\r\n",
                                bytes.len()
                            );
                            let _ = stream.write_all(head.as_bytes());
                            if stall.load(Ordering::SeqCst) {
                                let _ = stream.write_all(&bytes[..bytes.len() / 2]);
                                let _ = stream.flush();
                                stalled.store(true, Ordering::SeqCst);
                                // Held open until the client goes.
                                let mut rest = Vec::new();
                                let _ = std::io::Read::read_to_end(&mut stream, &mut rest);
                                return;
                            }
                            let _ = stream.write_all(&bytes);
                        }
                        Err(_) => {
                            let _ = stream.write_all(
                                b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                            );
                        }
                    }
                });
            }
        });
        FileServer {
            url,
            stall,
            stalled,
        }
    }
}

/// A small tmpfs mounted on a folder for one test, unmounted when dropped.
pub struct Tmpfs(PathBuf);

impl Tmpfs {
    /// Needs root and CAP_SYS_ADMIN (CI has both); without them the test is skipped, or fails
    /// where SCANCER_NO_SKIP is set.
    pub fn mount(dir: &Path, test: &str) -> Option<Tmpfs> {
        Tmpfs::mount_sized(dir, "64k", test)
    }

    /// `mount`, of `size` (as mount's `size=` option takes it).
    pub fn mount_sized(dir: &Path, size: &str, test: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(dir).unwrap();
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "scancer-test"])
            .arg(dir)
            .stderr(std::process::Stdio::piped())
            .output();
        match mounted {
            Ok(out) if out.status.success() => Some(Tmpfs(dir.to_path_buf())),
            other => {
                crate::util::skip(
                    test,
                    &format!("cannot mount a {size} tmpfs (root and CAP_SYS_ADMIN): {other:?}"),
                );
                None
            }
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}
