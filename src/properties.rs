//! Java `.properties` files, as TorchServe reads its `config.properties` (`Properties.load`) and
//! writes its config snapshots (`Properties.store`): comments, `key=value`, `key: value` and
//! `key value` lines, continuation lines, and backslash escapes.

/// The `key=value` pairs of a properties file, in file order (a repeated key: the last one wins, as
/// in Java).
pub(crate) fn parse(text: &str) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> = Vec::new();
    let mut lines = text.lines();
    while let Some(first) = lines.next() {
        let mut logical = first.trim_start().to_string();
        if logical.is_empty() || logical.starts_with('#') || logical.starts_with('!') {
            continue;
        }
        // A line ending in an odd number of backslashes continues on the next one.
        while ends_in_escape(&logical) {
            logical.pop();
            match lines.next() {
                Some(next) => logical.push_str(next.trim_start()),
                None => break,
            }
        }
        let (key, value) = split(&logical);
        let (key, value) = (unescape(key), unescape(value));
        match pairs.iter_mut().find(|(k, _)| *k == key) {
            Some(pair) => pair.1 = value,
            None => pairs.push((key, value)),
        }
    }
    pairs
}

fn ends_in_escape(line: &str) -> bool {
    line.chars().rev().take_while(|&c| c == '\\').count() % 2 == 1
}

/// The key (up to the first unescaped `=`, `:` or white space) and the value (after it, and after
/// white space and one separator).
fn split(line: &str) -> (&str, &str) {
    let bytes = line.as_bytes();
    let mut k = 0;
    while k < bytes.len() {
        match bytes[k] {
            b'\\' => k += 2,
            b'=' | b':' | b' ' | b'\t' | b'\x0c' => break,
            _ => k += 1,
        }
    }
    let k = k.min(bytes.len());
    let key = &line[..k];
    let mut rest = line[k..].trim_start_matches([' ', '\t', '\x0c']);
    if let Some(after) = rest.strip_prefix(['=', ':']) {
        rest = after.trim_start_matches([' ', '\t', '\x0c']);
    }
    (key, rest)
}

fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('f') => out.push('\x0c'),
            Some('u') => {
                let hex: String = chars.by_ref().take(4).collect();
                match u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
                    Some(decoded) => out.push(decoded),
                    None => out.push_str(&hex),
                }
            }
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

/// A key or value escaped as `Properties.store` writes it: `\`, `=`, `:`, `#`, `!` and control
/// characters escaped, and a key's spaces (a value's leading space only); characters outside ASCII
/// as `\uXXXX`.
pub(crate) fn escape(text: &str, key: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for (k, c) in text.chars().enumerate() {
        match c {
            ' ' if key || k == 0 => out.push_str("\\ "),
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\x0c' => out.push_str("\\f"),
            '=' | ':' | '#' | '!' => {
                out.push('\\');
                out.push(c);
            }
            c if (' '..='~').contains(&c) => out.push(c),
            c => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04X}"));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_java_reads() {
        let text = "# comment\n! also\n  inference_address=http://0.0.0.0:8085\nmodel_store : /mnt/models/model-store\nkey value with spaces\nmodels={\\\n  \"a\": 1\\\n}\nescaped\\:key=a\\=b\\u0041\\\\\nempty=\nrepeat=1\nrepeat=2\n";
        let pairs = parse(text);
        let get = |k: &str| {
            pairs
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("inference_address"), Some("http://0.0.0.0:8085"));
        assert_eq!(get("model_store"), Some("/mnt/models/model-store"));
        assert_eq!(get("key"), Some("value with spaces"));
        assert_eq!(get("models"), Some("{\"a\": 1}"));
        assert_eq!(get("escaped:key"), Some("a=bA\\"));
        assert_eq!(get("empty"), Some(""));
        assert_eq!(get("repeat"), Some("2"));
        assert_eq!(pairs.len(), 7);
    }

    #[test]
    fn what_it_writes_reads_back() {
        let value = r#"{"name":"x.cfg","models":{"pcam":{"1.0":{"marName":"pcam.mar"}}}} é"#;
        let line = format!(
            "{}={}",
            escape("model_snapshot", true),
            escape(value, false)
        );
        assert!(
            line.starts_with("model_snapshot={\"name\"\\:\"x.cfg\""),
            "{line}"
        );
        assert!(line.ends_with("\\u00E9"), "{line}");
        assert_eq!(
            parse(&line),
            [("model_snapshot".to_string(), value.to_string())]
        );
        assert_eq!(
            parse(&format!("a={}", escape(" lead", false)))[0].1,
            " lead"
        );
    }
}
