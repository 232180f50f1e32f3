//! One rendering of result values for every engine the .slt files run on, so
//! the same expected output serves in process and over the wire.

/// A result value, whatever engine produced it.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    /// Decimal already as text (exact).
    Decimal(String),
    Text(String),
    /// ISO date.
    Date(String),
    /// A timestamp with time zone, as UTC microseconds since the epoch.
    TimestampUtc(i64),
    /// A timestamp without time zone, as microseconds since the epoch.
    Timestamp(i64),
    List(Vec<Value>),
}

/// Render a value the way the .slt files expect it.
pub fn render(value: &Value) -> String {
    match value {
        Value::Null => "NULL".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) => render_float(*f),
        Value::Decimal(d) => d.clone(),
        Value::Text(s) if s.is_empty() => "(empty)".to_string(),
        Value::Text(s) => s.clone(),
        Value::Date(d) => d.clone(),
        Value::TimestampUtc(micros) => format!("{}+00", render_micros(*micros)),
        Value::Timestamp(micros) => render_micros(*micros),
        Value::List(items) => {
            let inner: Vec<String> = items.iter().map(render).collect();
            format!("[{}]", inner.join(", "))
        }
    }
}

/// Floats with 12 significant digits, trailing zeros dropped: exact enough to
/// catch a wrong formula, stable across engines and platforms.
pub fn render_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".to_string();
    }
    if f.is_infinite() {
        return if f > 0.0 {
            "Infinity".into()
        } else {
            "-Infinity".into()
        };
    }
    if f == 0.0 {
        return "0".to_string();
    }
    let magnitude = f.abs().log10().floor() as i32;
    let decimals = (11 - magnitude).clamp(0, 15) as usize;
    let text = format!("{f:.decimals$}");
    let text = if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    };
    if text == "-0" {
        "0".to_string()
    } else {
        text
    }
}

fn render_micros(micros: i64) -> String {
    let seconds = micros.div_euclid(1_000_000);
    let fraction = micros.rem_euclid(1_000_000);
    match chrono::DateTime::from_timestamp(seconds, (fraction * 1000) as u32) {
        Some(t) if fraction == 0 => t.format("%Y-%m-%d %H:%M:%S").to_string(),
        Some(t) => t.format("%Y-%m-%d %H:%M:%S%.6f").to_string(),
        None => format!("<timestamp {micros}>"),
    }
}

/// Checks of the renderer itself, run by the harness before any file.
pub fn self_check() -> Result<(), String> {
    let cases = [
        (render_float(0.5), "0.5"),
        (render_float(2.0), "2"),
        (render_float(1.0 / 3.0), "0.333333333333"),
        (render_float(-1234.5678), "-1234.5678"),
        (render_float(123456789.0), "123456789"),
        (
            render(&Value::TimestampUtc(1_600_000_000_000_000)),
            "2020-09-13 12:26:40+00",
        ),
        (render(&Value::Text(String::new())), "(empty)"),
    ];
    for (got, want) in cases {
        if got != want {
            return Err(format!("renderer: got {got}, want {want}"));
        }
    }
    Ok(())
}
