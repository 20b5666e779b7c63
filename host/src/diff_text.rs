//! A metadata diff as people read it: text grouped by object, or Markdown for a pull request or a
//! ticket. Shared by the command line and the MCP server, so that both say it the same way.

use crate::bindings::name_of;
use crate::cache::{ChangeKind, DiffPart, DiffSideInfo, FieldChange, MetadataDiff, ObjectChange};
use std::fmt::Write as _;

fn short_hash(hash: &str) -> &str {
    &hash[..hash.len().min(12)]
}

fn sign(change: ChangeKind) -> &'static str {
    match change {
        ChangeKind::Added => "+",
        ChangeKind::Removed => "-",
        ChangeKind::Changed => "~",
    }
}

fn value(v: &Option<String>) -> &str {
    v.as_deref().unwrap_or("none")
}

/// One change inside an object, as a line: `~ property CreditLimit: is-mandatory false -> true  [breaking]`.
pub fn describe_change(c: &FieldChange) -> String {
    let part = name_of(&c.part);
    let what = match (c.part, &c.field) {
        (DiffPart::Attribute | DiffPart::Key, Some(field)) => format!("{field}: {} -> {}", value(&c.old), value(&c.new)),
        (_, Some(field)) => format!("{part} {}: {field} {} -> {}", c.name, value(&c.old), value(&c.new)),
        (_, None) => format!("{part} {}", c.name),
    };
    format!("{} {what}{}", sign(c.change), if c.breaking { "  [breaking]" } else { "" })
}

fn describe_object(o: &ObjectChange) -> String {
    format!("{} {} {}{}", sign(o.change), name_of(&o.kind), o.name, if o.breaking { "  [breaking]" } else { "" })
}

fn counts(diff: &MetadataDiff) -> String {
    let of = |change: ChangeKind| diff.objects.iter().filter(|o| o.change == change).count();
    let breaking = diff.objects.iter().filter(|o| o.breaking).count();
    format!(
        "{} added, {} removed, {} changed ({breaking} breaking), {} unchanged",
        of(ChangeKind::Added),
        of(ChangeKind::Removed),
        of(ChangeKind::Changed),
        diff.unchanged
    )
}

fn side_line(letter: &str, name: &str, info: &DiffSideInfo) -> String {
    let envs = if info.environments.is_empty() { "no environment runs it now".to_owned() } else { info.environments.join(", ") };
    format!("{letter}  {name}  version {}  ({envs})", short_hash(&info.modules_hash))
}

pub fn text(diff: &MetadataDiff, (a, b): (&str, &str)) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}", side_line("A", a, &diff.a));
    let _ = writeln!(out, "{}", side_line("B", b, &diff.b));
    let m = &diff.modules;
    let _ = writeln!(
        out,
        "\nModules: {} changed, {} added, {} removed, {} unchanged",
        m.changed.len(),
        m.added.len(),
        m.removed.len(),
        m.unchanged
    );
    for c in &m.changed {
        let _ = writeln!(out, "  ~ {}  {} -> {}", c.module_id, c.old_version, c.new_version);
    }
    for x in &m.added {
        let _ = writeln!(out, "  + {}  {}", x.module_id, x.version);
    }
    for x in &m.removed {
        let _ = writeln!(out, "  - {}  {}", x.module_id, x.version);
    }
    let _ = writeln!(out, "\nObjects: {}", counts(diff));
    for o in &diff.objects {
        let _ = writeln!(out, "  {}", describe_object(o));
        for c in &o.changes {
            let _ = writeln!(out, "      {}", describe_change(c));
        }
    }
    if !diff.labels.is_empty() {
        let _ = writeln!(out, "\nLabels: {} texts changed", diff.labels.len());
        for l in &diff.labels {
            let _ = writeln!(out, "  ~ {} ({}): {:?} -> {:?}", l.label_id, l.language, value(&l.old), value(&l.new));
        }
    }
    out
}

/// Backticks around a name, with any backtick in it replaced: a name never breaks the table.
fn code(s: &str) -> String {
    format!("`{}`", s.replace('`', "'").replace('|', "\\|"))
}

pub fn markdown(diff: &MetadataDiff, (a, b): (&str, &str)) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "## Metadata changes\n");
    let _ = writeln!(out, "- **A** {} (version {})", code(a), code(short_hash(&diff.a.modules_hash)));
    let _ = writeln!(out, "- **B** {} (version {})", code(b), code(short_hash(&diff.b.modules_hash)));
    let _ = writeln!(out, "- Objects: {}\n", counts(diff));
    let m = &diff.modules;
    if !(m.changed.is_empty() && m.added.is_empty() && m.removed.is_empty()) {
        let _ = writeln!(out, "### Modules\n\n| | module | A | B |\n|---|---|---|---|");
        for c in &m.changed {
            let _ = writeln!(out, "| ~ | {} | {} | {} |", code(&c.module_id), c.old_version, c.new_version);
        }
        for x in &m.added {
            let _ = writeln!(out, "| + | {} | | {} |", code(&x.module_id), x.version);
        }
        for x in &m.removed {
            let _ = writeln!(out, "| - | {} | {} | |", code(&x.module_id), x.version);
        }
        out.push('\n');
    }
    if !diff.objects.is_empty() {
        let _ = writeln!(out, "### Objects\n\n| | kind | name | change | breaking |\n|---|---|---|---|---|");
        for o in &diff.objects {
            let breaking = |b: bool| if b { "**yes**" } else { "" };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} |",
                sign(o.change),
                name_of(&o.kind),
                code(&o.name),
                name_of(&o.change),
                breaking(o.breaking)
            );
            for c in &o.changes {
                let what = describe_change(c);
                let what = what.trim_end_matches("  [breaking]");
                let _ = writeln!(out, "| | | | {} | {} |", what.replace('|', "\\|"), breaking(c.breaking));
            }
        }
        out.push('\n');
    }
    if !diff.labels.is_empty() {
        let _ = writeln!(out, "### Labels\n\n| label | language | A | B |\n|---|---|---|---|");
        for l in &diff.labels {
            let cell = |v: &Option<String>| value(v).replace('|', "\\|");
            let _ = writeln!(out, "| {} | {} | {} | {} |", code(&l.label_id), l.language, cell(&l.old), cell(&l.new));
        }
    }
    out
}
