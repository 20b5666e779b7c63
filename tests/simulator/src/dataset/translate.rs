//! Texts in the other languages of a dataset. Deterministic and visibly language-specific: common
//! words of F&O labels are translated, and a text with no known word carries a language tag.

const GERMAN: &[(&str, &str)] = &[
    ("account", "Konto"),
    ("accounts", "Konten"),
    ("address", "Adresse"),
    ("amount", "Betrag"),
    ("bank", "Bank"),
    ("batch", "Charge"),
    ("budget", "Budget"),
    ("code", "Code"),
    ("company", "Unternehmen"),
    ("contact", "Kontakt"),
    ("cost", "Kosten"),
    ("country", "Land"),
    ("currency", "Währung"),
    ("customer", "Kunde"),
    ("customers", "Kunden"),
    ("date", "Datum"),
    ("default", "Standard"),
    ("description", "Beschreibung"),
    ("dimension", "Dimension"),
    ("discount", "Rabatt"),
    ("employee", "Mitarbeiter"),
    ("from", "von"),
    ("group", "Gruppe"),
    ("groups", "Gruppen"),
    ("id", "Kennung"),
    ("invoice", "Rechnung"),
    ("item", "Artikel"),
    ("journal", "Erfassung"),
    ("ledger", "Sachkonto"),
    ("line", "Zeile"),
    ("lines", "Zeilen"),
    ("location", "Lagerplatz"),
    ("main", "Haupt"),
    ("method", "Methode"),
    ("name", "Name"),
    ("no", "Nein"),
    ("number", "Nummer"),
    ("order", "Auftrag"),
    ("orders", "Aufträge"),
    ("parameters", "Parameter"),
    ("payment", "Zahlung"),
    ("period", "Periode"),
    ("price", "Preis"),
    ("product", "Produkt"),
    ("products", "Produkte"),
    ("project", "Projekt"),
    ("purchase", "Einkauf"),
    ("quantity", "Menge"),
    ("rate", "Satz"),
    ("reason", "Ursache"),
    ("sales", "Verkauf"),
    ("setup", "Einrichtung"),
    ("site", "Standort"),
    ("status", "Status"),
    ("tax", "Steuer"),
    ("to", "bis"),
    ("total", "Gesamt"),
    ("type", "Typ"),
    ("unit", "Einheit"),
    ("valid", "Gültig"),
    ("value", "Wert"),
    ("vendor", "Kreditor"),
    ("vendors", "Kreditoren"),
    ("version", "Version"),
    ("warehouse", "Lager"),
    ("worker", "Arbeitskraft"),
    ("year", "Jahr"),
    ("yes", "Ja"),
];

const FRENCH: &[(&str, &str)] = &[
    ("account", "Compte"),
    ("accounts", "Comptes"),
    ("address", "Adresse"),
    ("amount", "Montant"),
    ("bank", "Banque"),
    ("batch", "Lot"),
    ("budget", "Budget"),
    ("code", "Code"),
    ("company", "Société"),
    ("contact", "Contact"),
    ("cost", "Coût"),
    ("country", "Pays"),
    ("currency", "Devise"),
    ("customer", "Client"),
    ("customers", "Clients"),
    ("date", "Date"),
    ("default", "Par défaut"),
    ("description", "Description"),
    ("dimension", "Dimension"),
    ("discount", "Remise"),
    ("employee", "Employé"),
    ("from", "de"),
    ("group", "Groupe"),
    ("groups", "Groupes"),
    ("id", "ID"),
    ("invoice", "Facture"),
    ("item", "Article"),
    ("journal", "Journal"),
    ("ledger", "Grand livre"),
    ("line", "Ligne"),
    ("lines", "Lignes"),
    ("location", "Emplacement"),
    ("main", "Principal"),
    ("method", "Méthode"),
    ("name", "Nom"),
    ("no", "Non"),
    ("number", "Numéro"),
    ("order", "Commande"),
    ("orders", "Commandes"),
    ("parameters", "Paramètres"),
    ("payment", "Paiement"),
    ("period", "Période"),
    ("price", "Prix"),
    ("product", "Produit"),
    ("products", "Produits"),
    ("project", "Projet"),
    ("purchase", "Achat"),
    ("quantity", "Quantité"),
    ("rate", "Taux"),
    ("reason", "Motif"),
    ("sales", "Ventes"),
    ("setup", "Configuration"),
    ("site", "Site"),
    ("status", "Statut"),
    ("tax", "Taxe"),
    ("to", "à"),
    ("total", "Total"),
    ("type", "Type"),
    ("unit", "Unité"),
    ("valid", "Valide"),
    ("value", "Valeur"),
    ("vendor", "Fournisseur"),
    ("vendors", "Fournisseurs"),
    ("version", "Version"),
    ("warehouse", "Entrepôt"),
    ("worker", "Collaborateur"),
    ("year", "Année"),
    ("yes", "Oui"),
];

/// The text of an en-US label in `language`.
pub(crate) fn translate(text: &str, language: &str) -> String {
    let (words, tag) = match language.split('-').next().unwrap_or(language) {
        "de" => (GERMAN, "DE"),
        "fr" => (FRENCH, "FR"),
        _ => (&[][..], ""),
    };
    let mut translated = false;
    let mut out = Vec::new();
    for word in text.split(' ') {
        let lower = word.to_lowercase();
        match words.binary_search_by(|(en, _)| en.cmp(&lower.as_str())) {
            Ok(i) => {
                // Words spelled alike in both languages (Status, Version) do not make a text German.
                translated |= words[i].1 != word;
                out.push(words[i].1.to_string());
            }
            Err(_) => out.push(word.to_string()),
        }
    }
    let mut result = out.join(" ");
    if !translated {
        let tag = if tag.is_empty() { language.to_uppercase() } else { tag.to_string() };
        result.push_str(&format!(" ({tag})"));
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn word_lists_are_sorted_for_binary_search() {
        for list in [GERMAN, FRENCH] {
            assert!(list.windows(2).all(|w| w[0].0 < w[1].0));
        }
    }

    #[test]
    fn translates_known_words_and_tags_the_rest() {
        assert_eq!(translate("Customer group ID", "de"), "Kunde Gruppe Kennung");
        assert_eq!(translate("Customer group ID", "fr"), "Client Groupe ID");
        assert_eq!(translate("Fuel surcharge", "de"), "Fuel surcharge (DE)");
        assert_eq!(translate("Fuel surcharge", "nl"), "Fuel surcharge (NL)");
        assert_eq!(translate("Status", "de"), "Status (DE)");
    }
}
