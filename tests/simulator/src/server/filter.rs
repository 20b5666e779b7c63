//! `$filter` expressions over the scalar fields of an item: comparisons (`eq`, `ne`, `gt`, `ge`,
//! `lt`, `le`), `and`, `or`, `not`, parentheses, and the functions `contains`, `startswith`,
//! `endswith`, `tolower` and `toupper`.

use super::odata::string_literal;
use serde_json::{Map, Value};

#[derive(Clone, Debug, PartialEq)]
enum Token {
    Ident(String),
    Literal(Value),
    Open,
    Close,
    Comma,
}

fn tokenize(s: &str) -> Result<Vec<Token>, String> {
    let mut tokens = Vec::new();
    let mut rest = s.trim_start();
    while !rest.is_empty() {
        let c = rest.chars().next().unwrap_or(' ');
        let (token, len) = match c {
            '(' => (Token::Open, 1),
            ')' => (Token::Close, 1),
            ',' => (Token::Comma, 1),
            '\'' => {
                let (value, after) = string_literal(rest).ok_or("unterminated string literal")?;
                (Token::Literal(Value::String(value)), rest.len() - after.len())
            }
            c if c.is_ascii_digit() || c == '-' => {
                let len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-')).unwrap_or(rest.len());
                let number: f64 = rest[..len].parse().map_err(|_| format!("bad number '{}'", &rest[..len]))?;
                let value = serde_json::Number::from_f64(number).map(Value::Number).ok_or("bad number")?;
                (Token::Literal(value), len)
            }
            c if c.is_alphabetic() || c == '_' || c == '@' || c == '$' => {
                let len = rest.find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '.' || c == '@')).unwrap_or(rest.len());
                let word = &rest[..len];
                let token = match word {
                    "true" => Token::Literal(Value::Bool(true)),
                    "false" => Token::Literal(Value::Bool(false)),
                    "null" => Token::Literal(Value::Null),
                    _ => Token::Ident(word.to_string()),
                };
                (token, len)
            }
            other => return Err(format!("unexpected character '{other}'")),
        };
        tokens.push(token);
        rest = rest[len..].trim_start();
    }
    Ok(tokens)
}

#[derive(Debug)]
enum Expr {
    Field(String),
    Literal(Value),
    Compare(String, Box<Expr>, Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    Call(String, Vec<Expr>),
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn keyword(&mut self, word: &str) -> bool {
        if matches!(self.peek(), Some(Token::Ident(w)) if w == word) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, token: Token) -> Result<(), String> {
        if self.peek() == Some(&token) {
            self.at += 1;
            Ok(())
        } else {
            Err(format!("expected {token:?}"))
        }
    }

    fn or(&mut self) -> Result<Expr, String> {
        let mut left = self.and()?;
        while self.keyword("or") {
            left = Expr::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, String> {
        let mut left = self.unary()?;
        while self.keyword("and") {
            left = Expr::And(Box::new(left), Box::new(self.unary()?));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Expr, String> {
        if self.keyword("not") {
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        let left = self.operand()?;
        for op in ["eq", "ne", "gt", "ge", "lt", "le"] {
            if self.keyword(op) {
                return Ok(Expr::Compare(op.to_string(), Box::new(left), Box::new(self.operand()?)));
            }
        }
        Ok(left)
    }

    fn operand(&mut self) -> Result<Expr, String> {
        match self.tokens.get(self.at).cloned() {
            Some(Token::Open) => {
                self.at += 1;
                let inner = self.or()?;
                self.expect(Token::Close)?;
                Ok(inner)
            }
            Some(Token::Literal(v)) => {
                self.at += 1;
                Ok(Expr::Literal(v))
            }
            Some(Token::Ident(name)) => {
                self.at += 1;
                if self.peek() != Some(&Token::Open) {
                    return Ok(Expr::Field(name));
                }
                self.at += 1;
                let mut args = vec![self.or()?];
                while self.peek() == Some(&Token::Comma) {
                    self.at += 1;
                    args.push(self.or()?);
                }
                self.expect(Token::Close)?;
                Ok(Expr::Call(name, args))
            }
            other => Err(format!("unexpected {other:?}")),
        }
    }
}

/// A parsed `$filter`.
#[derive(Debug)]
pub(crate) struct Filter(Expr);

impl Filter {
    pub(crate) fn parse(s: &str) -> Result<Filter, String> {
        let mut parser = Parser { tokens: tokenize(s)?, at: 0 };
        let expr = parser.or()?;
        if parser.at != parser.tokens.len() {
            return Err(format!("unexpected {:?}", parser.tokens[parser.at]));
        }
        Ok(Filter(expr))
    }

    pub(crate) fn matches(&self, item: &Map<String, Value>) -> Result<bool, String> {
        Ok(eval(&self.0, item)? == Value::Bool(true))
    }
}

fn text(v: &Value) -> Option<&str> {
    v.as_str()
}

fn eval(expr: &Expr, item: &Map<String, Value>) -> Result<Value, String> {
    Ok(match expr {
        Expr::Field(name) => item.get(name).cloned().ok_or_else(|| format!("unknown property '{name}'"))?,
        Expr::Literal(v) => v.clone(),
        Expr::Not(e) => Value::Bool(eval(e, item)? != Value::Bool(true)),
        Expr::And(a, b) => Value::Bool(eval(a, item)? == Value::Bool(true) && eval(b, item)? == Value::Bool(true)),
        Expr::Or(a, b) => Value::Bool(eval(a, item)? == Value::Bool(true) || eval(b, item)? == Value::Bool(true)),
        Expr::Compare(op, a, b) => {
            let (a, b) = (eval(a, item)?, eval(b, item)?);
            let ordering = match (&a, &b) {
                (Value::Number(x), Value::Number(y)) => x.as_f64().partial_cmp(&y.as_f64()),
                (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
                (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
                _ => None,
            };
            Value::Bool(match op.as_str() {
                "eq" => a == b || ordering == Some(std::cmp::Ordering::Equal),
                "ne" => !(a == b || ordering == Some(std::cmp::Ordering::Equal)),
                "gt" => ordering == Some(std::cmp::Ordering::Greater),
                "ge" => matches!(ordering, Some(std::cmp::Ordering::Greater | std::cmp::Ordering::Equal)),
                "lt" => ordering == Some(std::cmp::Ordering::Less),
                _ => matches!(ordering, Some(std::cmp::Ordering::Less | std::cmp::Ordering::Equal)),
            })
        }
        Expr::Call(name, args) => {
            let values = args.iter().map(|a| eval(a, item)).collect::<Result<Vec<_>, _>>()?;
            match (name.as_str(), values.as_slice()) {
                ("tolower", [v]) => text(v).map_or(Value::Null, |s| Value::String(s.to_lowercase())),
                ("toupper", [v]) => text(v).map_or(Value::Null, |s| Value::String(s.to_uppercase())),
                ("contains" | "startswith" | "endswith", [a, b]) => {
                    let (Some(a), Some(b)) = (text(a), text(b)) else {
                        return Ok(Value::Bool(false));
                    };
                    Value::Bool(match name.as_str() {
                        "contains" => a.contains(b),
                        "startswith" => a.starts_with(b),
                        _ => a.ends_with(b),
                    })
                }
                _ => return Err(format!("unsupported function {name} with {} arguments", values.len())),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn item() -> Map<String, Value> {
        match json!({"Name": "CustCustomerV3Entity", "IsReadOnly": false, "EntityCategory": "Master", "Count": 3, "Note": null}) {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    fn check(filter: &str) -> bool {
        Filter::parse(filter).and_then(|f| f.matches(&item())).unwrap_or_else(|e| panic!("{filter}: {e}"))
    }

    #[test]
    fn evaluates_comparisons_and_logic() {
        assert!(check("Name eq 'CustCustomerV3Entity'"));
        assert!(!check("Name eq 'Other'"));
        assert!(check("Name ne 'Other' and IsReadOnly eq false"));
        assert!(check("EntityCategory eq 'Reference' or Count gt 2"));
        assert!(check("not (Count lt 3)"));
        assert!(check("startswith(Name,'Cust') and contains(tolower(Name), 'customer')"));
        assert!(check("Note eq null"));
    }

    #[test]
    fn rejects_nonsense() {
        assert!(Filter::parse("Name eq").is_err());
        assert!(Filter::parse("Name eq 'x").is_err());
        assert!(Filter::parse("(Name eq 'x'").is_err());
        assert!(Filter::parse("Name eq 'x' junk").is_err());
        let f = Filter::parse("Missing eq 1").expect("parses");
        assert!(f.matches(&item()).is_err());
    }
}
