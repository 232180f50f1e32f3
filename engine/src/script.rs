//! Splitting a SQL script into statements, keeping where each one starts.
//!
//! We split ourselves rather than with a parser so that a statement DataFusion
//! cannot parse still gets its own number and line in the error, and so that
//! comments and empty statements cost nothing.

/// One statement of a script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    /// 1-based position among the script's non-empty statements.
    pub number: usize,
    /// 1-based line where the statement's first token is.
    pub line: usize,
    /// The statement text without the trailing semicolon.
    pub sql: String,
}

/// An unterminated quote or comment, with the line it started on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitError {
    pub line: usize,
    pub message: String,
}

/// Split `text` on top-level semicolons, skipping comment-only and empty parts.
/// Understands '…' (with ''), E'…' (with \'), "…", $tag$…$tag$, -- and nested /* */.
pub fn split(text: &str) -> Result<Vec<Statement>, SplitError> {
    let chars: Vec<char> = text.chars().collect();
    let mut statements = Vec::new();
    let mut current = String::new();
    let mut has_token = false;
    let mut start_line = 1;
    let mut line = 1;
    let mut i = 0;

    let mut finish = |current: &mut String, has_token: &mut bool, start_line: usize| {
        if *has_token {
            statements.push(Statement {
                number: statements.len() + 1,
                line: start_line,
                sql: current.trim().to_string(),
            });
        }
        current.clear();
        *has_token = false;
    };

    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        // Comments: kept in the text (harmless), but do not start a statement.
        if c == '-' && next == Some('-') {
            while i < chars.len() && chars[i] != '\n' {
                current.push(chars[i]);
                i += 1;
            }
            continue;
        }
        if c == '/' && next == Some('*') {
            let opened = line;
            let mut depth = 0usize;
            loop {
                match (chars.get(i).copied(), chars.get(i + 1).copied()) {
                    (Some('/'), Some('*')) => {
                        depth += 1;
                        current.push_str("/*");
                        i += 2;
                    }
                    (Some('*'), Some('/')) => {
                        depth -= 1;
                        current.push_str("*/");
                        i += 2;
                        if depth == 0 {
                            break;
                        }
                    }
                    (Some(ch), _) => {
                        if ch == '\n' {
                            line += 1;
                        }
                        current.push(ch);
                        i += 1;
                    }
                    (None, _) => {
                        return Err(SplitError {
                            line: opened,
                            message: "unterminated /* comment".into(),
                        })
                    }
                }
            }
            continue;
        }
        if c == ';' {
            finish(&mut current, &mut has_token, start_line);
            i += 1;
            continue;
        }
        if c.is_whitespace() {
            if c == '\n' {
                line += 1;
            }
            current.push(c);
            i += 1;
            continue;
        }
        if !has_token {
            has_token = true;
            start_line = line;
            current.clear();
        }
        // Quoted things: copy through to the closing quote.
        let escape_string = (c == 'E' || c == 'e') && next == Some('\'');
        if c == '\'' || c == '"' || escape_string {
            let opened = line;
            if escape_string {
                current.push(c);
                i += 1;
            }
            let quote = chars[i];
            current.push(quote);
            i += 1;
            loop {
                let Some(ch) = chars.get(i).copied() else {
                    return Err(SplitError {
                        line: opened,
                        message: format!("unterminated {quote} quote"),
                    });
                };
                current.push(ch);
                i += 1;
                if ch == '\n' {
                    line += 1;
                }
                if escape_string && ch == '\\' {
                    if let Some(escaped) = chars.get(i).copied() {
                        current.push(escaped);
                        i += 1;
                    }
                    continue;
                }
                if ch == quote {
                    if chars.get(i).copied() == Some(quote) {
                        current.push(quote);
                        i += 1;
                        continue;
                    }
                    break;
                }
            }
            continue;
        }
        if c == '$' {
            if let Some(tag) = dollar_tag(&chars[i..]) {
                let opened = line;
                let tag_chars: Vec<char> = tag.chars().collect();
                current.push_str(&tag);
                i += tag_chars.len();
                loop {
                    if i >= chars.len() {
                        return Err(SplitError {
                            line: opened,
                            message: format!("unterminated {tag} string"),
                        });
                    }
                    if chars[i..].starts_with(&tag_chars) {
                        current.push_str(&tag);
                        i += tag_chars.len();
                        break;
                    }
                    if chars[i] == '\n' {
                        line += 1;
                    }
                    current.push(chars[i]);
                    i += 1;
                }
                continue;
            }
        }
        current.push(c);
        i += 1;
    }
    finish(&mut current, &mut has_token, start_line);
    Ok(statements)
}

/// `$tag$` or `$$` at the start of `chars`, if it is a dollar-quote opener.
fn dollar_tag(chars: &[char]) -> Option<String> {
    let mut tag = String::from("$");
    for (index, &c) in chars.iter().enumerate().skip(1) {
        if c == '$' {
            tag.push('$');
            return Some(tag);
        }
        let valid = c == '_' || c.is_alphabetic() || (index > 1 && c.is_ascii_digit());
        if !valid {
            return None;
        }
        tag.push(c);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sqls(text: &str) -> Vec<(usize, usize, String)> {
        split(text)
            .unwrap()
            .into_iter()
            .map(|s| (s.number, s.line, s.sql))
            .collect()
    }

    #[test]
    fn splits_on_semicolons_and_keeps_lines() {
        let got = sqls("-- header\nSELECT 1;\n\n  SELECT 2\n  FROM t;\n-- trailing comment\n");
        assert_eq!(
            got,
            vec![
                (1, 2, "SELECT 1".to_string()),
                (2, 4, "SELECT 2\n  FROM t".to_string())
            ]
        );
    }

    #[test]
    fn semicolons_inside_quotes_and_comments_do_not_split() {
        let got = sqls(
            "SELECT 'a;b', \"c;d\", E'e\\';f' /* x; /* nested; */ y; */ ;\nSELECT $q$ ; $q$, $$;$$; -- ;\n",
        );
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(got[1].1, 2);
        assert!(got[0].2.contains("E'e\\';f'"));
    }

    #[test]
    fn comment_only_and_empty_statements_are_skipped() {
        assert!(sqls("-- nothing\n;;\n/* still nothing */;").is_empty());
        assert_eq!(sqls(";;SELECT 1;;").len(), 1);
    }

    #[test]
    fn doubled_quotes_stay_inside_the_string() {
        let got = sqls("SELECT 'it''s; fine';SELECT 2");
        assert_eq!(got[0].2, "SELECT 'it''s; fine'");
        assert_eq!(got[1].2, "SELECT 2");
    }

    #[test]
    fn unterminated_things_name_their_line() {
        let err = split("SELECT 1;\nSELECT 'oops;\n").unwrap_err();
        assert_eq!(err.line, 2);
        assert!(err.message.contains("unterminated"));
        let err = split("\n\n/* open").unwrap_err();
        assert_eq!(err.line, 3);
        let err = split("SELECT $a$ x").unwrap_err();
        assert!(err.message.contains("$a$"));
    }

    #[test]
    fn positional_parameters_are_not_dollar_quotes() {
        let got = sqls("SELECT $1, $2;");
        assert_eq!(got, vec![(1, 1, "SELECT $1, $2".to_string())]);
    }
}
