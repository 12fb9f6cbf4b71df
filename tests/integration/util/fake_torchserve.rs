//! An in-process HTTP server on loopback that answers with a real TorchServe 0.12's recorded answers
//! (testdata/torchserve/fixtures.json, made by examples/record_torchserve_fixtures.py), and keeps
//! every request it received.

use serde_json::Value;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub authorization: Option<String>,
}

struct Route {
    method: String,
    path: String,
    /// Fixture names answered in turn; the last one repeats.
    answers: Vec<String>,
    served: usize,
}

pub struct FakeTorchServe {
    pub url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

pub fn fixtures() -> HashMap<String, Value> {
    let text =
        std::fs::read_to_string(super::root().join("testdata/torchserve/fixtures.json")).unwrap();
    let list: Vec<Value> = serde_json::from_str(&text).unwrap();
    list.into_iter()
        .map(|f| (f["name"].as_str().unwrap().to_string(), f))
        .collect()
}

impl FakeTorchServe {
    /// `routes`: (method, path with query, fixture names in turn). `basic`: a `name:password` that an
    /// nginx in front demands (401 otherwise).
    pub fn start(routes: &[(&str, &str, &[&str])], basic: Option<&str>) -> FakeTorchServe {
        let fixtures = fixtures();
        for (_, _, names) in routes {
            for name in *names {
                assert!(fixtures.contains_key(*name), "no fixture {name}");
            }
        }
        let mut routes: Vec<Route> = routes
            .iter()
            .map(|(method, path, answers)| Route {
                method: method.to_string(),
                path: path.to_string(),
                answers: answers.iter().map(|a| a.to_string()).collect(),
                served: 0,
            })
            .collect();
        let expected = basic.map(|pair| {
            use base64::Engine as _;
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(pair)
            )
        });
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&seen);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    continue;
                }
                let mut parts = line.split_whitespace();
                let method = parts.next().unwrap_or("").to_string();
                let path = parts.next().unwrap_or("").to_string();
                let mut authorization = None;
                let mut length = 0usize;
                loop {
                    let mut header = String::new();
                    reader.read_line(&mut header).unwrap();
                    let header = header.trim_end();
                    if header.is_empty() {
                        break;
                    }
                    let (name, value) = header.split_once(':').unwrap();
                    match name.to_ascii_lowercase().as_str() {
                        "authorization" => authorization = Some(value.trim().to_string()),
                        "content-length" => length = value.trim().parse().unwrap(),
                        _ => {}
                    }
                }
                let mut body = vec![0; length];
                reader.read_exact(&mut body).unwrap();
                log.lock().unwrap().push(Seen {
                    method: method.clone(),
                    path: path.clone(),
                    authorization: authorization.clone(),
                });
                let (status, headers, text) = if expected.is_some() && authorization != expected {
                    (
                        401,
                        vec![("content-type".to_string(), "text/html".to_string()), ("www-authenticate".to_string(), "Basic realm=\"Scancer\"".to_string())],
                        "<html>\r\n<head><title>401 Authorization Required</title></head>\r\n<body>\r\n<center><h1>401 Authorization Required</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n".to_string(),
                    )
                } else {
                    match routes
                        .iter_mut()
                        .find(|r| r.method == method && r.path == path)
                    {
                        Some(route) => {
                            let name = &route.answers[route.served.min(route.answers.len() - 1)];
                            route.served += 1;
                            let f = &fixtures[name];
                            let headers = f["headers"]
                                .as_object()
                                .unwrap()
                                .iter()
                                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                                .collect();
                            (
                                f["status"].as_u64().unwrap() as u16,
                                headers,
                                f["body"].as_str().unwrap().to_string(),
                            )
                        }
                        None => (
                            599,
                            vec![],
                            format!("fake TorchServe: no route for {method} {path}"),
                        ),
                    }
                };
                let mut head = format!(
                    "HTTP/1.1 {status} X\r\ncontent-length: {}\r\nconnection: close\r\n",
                    text.len()
                );
                for (name, value) in headers {
                    head.push_str(&format!("{name}: {value}\r\n"));
                }
                head.push_str("\r\n");
                let _ = stream.write_all(head.as_bytes());
                let _ = stream.write_all(text.as_bytes());
            }
        });
        FakeTorchServe { url, seen }
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}
