//! Words in F&O names: splitting PascalCase identifiers, and the label text F&O would show for them.

/// Splits `CustomerGroupId` into `Customer`, `Group`, `Id`; keeps acronyms (`ABCCode` → `ABC`,
/// `Code`) and digit runs (`Tax1099Field` → `Tax`, `1099`, `Field`) together; `_` separates.
pub(crate) fn split_words(name: &str) -> Vec<&str> {
    let chars: Vec<(usize, char)> = name.char_indices().collect();
    let mut words = Vec::new();
    let mut start: Option<usize> = None;
    for (i, &(pos, c)) in chars.iter().enumerate() {
        if !c.is_alphanumeric() {
            if let Some(s) = start.take() {
                words.push(&name[s..pos]);
            }
            continue;
        }
        let Some(s) = start else {
            start = Some(pos);
            continue;
        };
        let prev = chars[i - 1].1;
        let next = chars.get(i + 1).map(|&(_, n)| n);
        let boundary = (c.is_uppercase() && prev.is_lowercase())
            || (c.is_uppercase() && prev.is_uppercase() && next.is_some_and(char::is_lowercase))
            || (c.is_ascii_digit() != prev.is_ascii_digit());
        if boundary {
            words.push(&name[s..pos]);
            start = Some(pos);
        }
    }
    if let Some(s) = start {
        words.push(&name[s..]);
    }
    words
}

/// The label text for a name: `CustomerGroupId` → "Customer group ID", `dataAreaId` → "Data area ID".
pub(crate) fn label_text(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    for (i, word) in split_words(name).into_iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        let acronym = word.len() > 1 && word.chars().all(|c| c.is_uppercase() || c.is_ascii_digit());
        if word == "Id" || word == "id" {
            out.push_str("ID");
        } else if acronym {
            out.push_str(word);
        } else if i == 0 {
            let mut chars = word.chars();
            if let Some(first) = chars.next() {
                out.extend(first.to_uppercase());
                out.push_str(chars.as_str());
            }
        } else {
            out.push_str(&word.to_lowercase());
        }
    }
    out
}

/// `CustomersV3` → (`Customers`, Some(3)).
pub(crate) fn split_version(name: &str) -> (&str, Option<u32>) {
    let digits = name.len() - name.trim_end_matches(|c: char| c.is_ascii_digit()).len();
    if digits == 0 || digits >= name.len() {
        return (name, None);
    }
    let head = &name[..name.len() - digits];
    match head.strip_suffix('V') {
        Some(stem) if !stem.is_empty() => (stem, name[name.len() - digits..].parse().ok()),
        _ => (name, None),
    }
}

/// The next version of a name: `CustomerV3` → `CustomerV4`, `Customer` → `CustomerV2`.
pub(crate) fn next_version(name: &str) -> String {
    match split_version(name) {
        (stem, Some(v)) => format!("{stem}V{}", v + 1),
        (stem, None) => format!("{stem}V2"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_pascal_case() {
        assert_eq!(split_words("CustomerGroupId"), ["Customer", "Group", "Id"]);
        assert_eq!(split_words("ABCCode"), ["ABC", "Code"]);
        assert_eq!(split_words("Tax1099Field"), ["Tax", "1099", "Field"]);
        assert_eq!(split_words("InvoiceType_MY"), ["Invoice", "Type", "MY"]);
        assert_eq!(split_words("dataAreaId"), ["data", "Area", "Id"]);
    }

    #[test]
    fn label_texts() {
        assert_eq!(label_text("CustomerGroupId"), "Customer group ID");
        assert_eq!(label_text("dataAreaId"), "Data area ID");
        assert_eq!(label_text("POSButtonGrid"), "POS button grid");
    }

    #[test]
    fn versions() {
        assert_eq!(split_version("CustomersV3"), ("Customers", Some(3)));
        assert_eq!(split_version("Report347"), ("Report347", None));
        assert_eq!(next_version("CustomerV3"), "CustomerV4");
        assert_eq!(next_version("CustomerGroup"), "CustomerGroupV2");
    }
}
