//! OData URL conventions: percent-encoding, query options, key segments and string literals.

/// Decodes `%XX` escapes (and `+` as a space when `plus_is_space`, as in query strings).
/// Invalid escapes are kept as they are; invalid UTF-8 becomes U+FFFD.
pub(crate) fn percent_decode(s: &str, plus_is_space: bool) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let hex = |c: u8| (c as char).to_digit(16);
        if b == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(if b == b'+' && plus_is_space { b' ' } else { b });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Encodes a query option value for a link, leaving the characters OData URLs show plainly.
pub(crate) fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        let plain = b.is_ascii_alphanumeric() || b"-_.~$'(),:@/".contains(&b);
        if plain {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `a=1&$top=2` → [("a","1"), ("$top","2")], decoded.
pub(crate) fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) => (percent_decode(k, true), percent_decode(v, true)),
            None => (percent_decode(pair, true), String::new()),
        })
        .collect()
}

pub(crate) fn encode_query(options: &[(String, String)]) -> String {
    options.iter().map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v))).collect::<Vec<_>>().join("&")
}

/// Reads an OData string literal at the start of `s` (`'O''Brien'` → `O'Brien`) and returns it
/// with the rest of `s`.
pub(crate) fn string_literal(s: &str) -> Option<(String, &str)> {
    let body = s.strip_prefix('\'')?;
    let mut value = String::new();
    let mut chars = body.char_indices();
    while let Some((i, c)) = chars.next() {
        if c == '\'' {
            if body[i + 1..].starts_with('\'') {
                value.push('\'');
                chars.next();
            } else {
                return Some((value, &body[i + 1..]));
            }
        } else {
            value.push(c);
        }
    }
    None
}

/// The (optional name, value) pairs of a key: `('X')` or `(Id='a',Language='b')`.
pub(crate) type KeyArgs = Vec<(Option<String>, String)>;

/// The key of a decoded segment like `DataEntities('X')` or `Labels(Id='a',Language='b')`:
/// the entity set name and its key.
pub(crate) fn key_segment(segment: &str) -> Option<(&str, KeyArgs)> {
    let open = segment.find('(')?;
    let set = &segment[..open];
    let mut rest = segment[open + 1..].strip_suffix(')')?;
    let mut args = Vec::new();
    loop {
        rest = rest.trim_start();
        let name = match rest.find(['=', '\'']) {
            Some(eq) if rest.as_bytes()[eq] == b'=' => {
                let name = rest[..eq].trim().to_string();
                rest = rest[eq + 1..].trim_start();
                Some(name)
            }
            _ => None,
        };
        let (value, after) = string_literal(rest)?;
        args.push((name, value));
        rest = after.trim_start();
        if rest.is_empty() {
            return Some((set, args));
        }
        rest = rest.strip_prefix(',')?;
    }
}

/// `{"error":{"code":…,"message":…,"innererror":{…}}}`, as the service reports errors.
pub(crate) fn error_body(code: &str, message: &str) -> String {
    serde_json::json!({
        "error": {
            "code": code,
            "message": message,
            "innererror": {"message": message, "type": "Microsoft.Dynamics.Platform.Integration.Services.OData.ODataException", "stacktrace": ""}
        }
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_and_encodes() {
        assert_eq!(percent_decode("Labels(Id=%27%40SYS1%27)", false), "Labels(Id='@SYS1')");
        assert_eq!(percent_decode("a+b%2", true), "a b%2");
        assert_eq!(percent_decode("%E2%82%AC", false), "€");
        assert_eq!(percent_encode("Name eq 'A&B'"), "Name%20eq%20'A%26B'");
        let q = parse_query("$filter=Name+eq+%27X%27&$top=5&flag");
        assert_eq!(q[0], ("$filter".to_string(), "Name eq 'X'".to_string()));
        assert_eq!(q[2], ("flag".to_string(), String::new()));
    }

    #[test]
    fn string_literals_undouble_quotes() {
        assert_eq!(string_literal("'O''Brien')"), Some(("O'Brien".to_string(), ")")));
        assert_eq!(string_literal("''"), Some((String::new(), "")));
        assert_eq!(string_literal("'open"), None);
    }

    #[test]
    fn key_segments() {
        let (set, args) = key_segment("DataEntities('O''Brien')").expect("key");
        assert_eq!((set, args), ("DataEntities", vec![(None, "O'Brien".to_string())]));
        let (set, args) = key_segment("Labels(Id='@SYS1',Language='en-US')").expect("key");
        assert_eq!(set, "Labels");
        assert_eq!(args[1], (Some("Language".to_string()), "en-US".to_string()));
        let (_, args) = key_segment("Labels(Id='a,b=c',Language='de')").expect("key");
        assert_eq!(args[0].1, "a,b=c");
        assert!(key_segment("DataEntities('x'").is_none());
        assert!(key_segment("DataEntities(x)").is_none());
    }
}
