//! Module lists captured from real environments, to make an environment report them.

use anyhow::{Context, anyhow, bail};
use serde_json::Value;
use std::path::Path;

/// Reads `GetInstalledModules` lines from a file holding a captured response
/// (`{"@odata.context": …, "value": [lines]}`), the same wrapped in an action result
/// (`{"success": true, "result": {"value": [lines]}, …}`), or a plain JSON array of lines.
pub fn load_modules_file(path: &Path) -> anyhow::Result<Vec<String>> {
    let shown = path.display();
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read modules file {shown}"))?;
    let value: Value = serde_json::from_str(&text).with_context(|| format!("{shown} is not valid JSON"))?;
    let lines = match &value {
        Value::Array(lines) => lines,
        Value::Object(object) => {
            if object.get("success") == Some(&Value::Bool(false)) {
                bail!("{shown}: the captured action failed (\"success\": false)");
            }
            match (object.get("value"), object.get("result")) {
                (Some(Value::Array(lines)), _) => lines,
                (_, Some(Value::Object(result))) => match result.get("value") {
                    Some(Value::Array(lines)) => lines,
                    _ => bail!("{shown}: \"result\" has no \"value\" array of module lines"),
                },
                _ => bail!(
                    "{shown}: expected a GetInstalledModules response (an object with a \"value\" array), \
                     an action result with \"result\".\"value\", or an array of module lines"
                ),
            }
        }
        _ => bail!("{shown}: expected a JSON object or array, found {value}"),
    };
    if lines.is_empty() {
        bail!("{shown}: holds no module lines");
    }
    lines
        .iter()
        .enumerate()
        .map(|(i, line)| line.as_str().map(str::to_string).ok_or_else(|| anyhow!("{shown}: module line {} is not a string: {line}", i + 1)))
        .collect()
}
