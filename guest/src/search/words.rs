//! Splitting names into the words people search for: `CustCustomerV3Entity` is "Cust Customer V3
//! Entity", `dataAreaId` is "data Area Id", `VENDOR_GROUP_ID` is "VENDOR GROUP ID".

/// The words of a name, in order.
pub fn split(name: &str) -> Vec<String> {
    let chars: Vec<char> = name.chars().collect();
    let mut words = Vec::new();
    let mut current = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if !c.is_alphanumeric() {
            flush(&mut words, &mut current);
            continue;
        }
        if let Some(&prev) = i.checked_sub(1).and_then(|p| chars.get(p)) {
            let next = chars.get(i + 1).copied();
            let boundary = (prev.is_lowercase() && c.is_uppercase())
                // "XMLParser": the P starts a word when a lowercase letter follows.
                || (prev.is_uppercase() && c.is_uppercase() && next.is_some_and(char::is_lowercase))
                // "Customer3" / "V3Entity": digits stick to the letters before them, and a letter
                // after digits starts a word.
                || (prev.is_ascii_digit() && c.is_alphabetic());
            if boundary {
                flush(&mut words, &mut current);
            }
        }
        current.push(c);
    }
    flush(&mut words, &mut current);
    words
}

fn flush(words: &mut Vec<String>, current: &mut String) {
    if !current.is_empty() {
        words.push(std::mem::take(current));
    }
}

/// The words column of the search index: the name's words, lower-cased, space-separated.
pub fn index_words(name: &str) -> String {
    split(name).iter().map(|w| w.to_lowercase()).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_pascal_camel_snake_and_acronyms() {
        assert_eq!(split("CustCustomerV3Entity"), ["Cust", "Customer", "V3", "Entity"]);
        assert_eq!(split("CustomerGroupId"), ["Customer", "Group", "Id"]);
        assert_eq!(split("dataAreaId"), ["data", "Area", "Id"]);
        assert_eq!(split("VENDOR_GROUP_ID"), ["VENDOR", "GROUP", "ID"]);
        assert_eq!(split("XMLParserV2"), ["XML", "Parser", "V2"]);
        assert_eq!(split("InvoiceType_MY"), ["Invoice", "Type", "MY"]);
        assert_eq!(split("WHSWarehouseZoneEntity"), ["WHS", "Warehouse", "Zone", "Entity"]);
        assert_eq!(index_words("CustomersV3"), "customers v3");
        assert!(split("").is_empty());
    }
}
