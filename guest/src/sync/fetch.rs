//! Reading from the metadata service: collections (following `@odata.nextLink` to the end) and
//! labels (many at once through the host's batch import).

use super::sources::PageError;
use crate::error::{Error, ErrorKind, Result};
use crate::odata::{self, Failure, shorten};
use crate::ports::{Ctx, HttpError, HttpRequest, HttpResponse, Level, Method, Phase, Progress};
use crate::url::odata_string_literal;
use serde_json::Value as Json;
use serde_json::value::RawValue;

/// Requests and bytes a sync has used so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Meter {
    pub requests: u64,
    pub bytes: u64,
}

impl Meter {
    pub fn count(&mut self, response: &HttpResponse) {
        self.requests += u64::from(response.attempts);
        self.bytes += response.body.len() as u64;
    }
}

/// Pages one collection can have before the loop is taken for a service fault.
const MAX_PAGES: usize = 100_000;

/// The largest collection item accepted, as JSON text. A real environment's largest public entity
/// is well under a megabyte; an item this large is a faulty or hostile answer, and taking it in
/// would cost memory and storage out of all proportion.
pub const MAX_ITEM_BYTES: usize = 16 << 20;

/// Fetches every item of `<base>/Metadata/<collection>`, following `@odata.nextLink`, and reads
/// each page's items with `read` (their raw JSON text, in order). An item that cannot be read fails
/// the whole fetch with its position. A page whose answer arrives cut off or garbled is asked for
/// again.
pub fn collection<T>(
    ctx: &Ctx<'_>,
    meter: &mut Meter,
    collection: &str,
    phase: &Phase,
    mut read: impl FnMut(&[&RawValue]) -> Result<Vec<T>, PageError>,
) -> Result<Vec<T>> {
    let base_url = ctx.http.base_url();
    let mut path = format!("/Metadata/{collection}");
    let mut items = Vec::new();
    let mut bytes = 0u64;
    let mut seen = std::collections::BTreeSet::new();
    for page in 1..=MAX_PAGES {
        ctx.check_cancelled()?;
        let request = odata::request(Method::Get, path.clone());
        let what = odata::describe(&base_url, &request);
        let mut retries = 0;
        let next = loop {
            let response = ctx.http.send(&request).map_err(|e| e.into_error(&what))?;
            meter.count(&response);
            bytes += response.body.len() as u64;
            odata::check_status(&response).map_err(|f| f.into_error(&what))?;
            let page_of = match envelope(&response.body) {
                Err(f) if f.is_transient() && retries < odata::TRUNCATED_RETRIES => {
                    retries += 1;
                    ctx.host.log(Level::Warn, &format!("{what}: {}; asking again", f.message()));
                    continue;
                }
                Err(f) => return Err(Error::parse(format!("{what}: {}", f.message()))),
                Ok(page_of) => page_of,
            };
            // Items are read one at a time from their raw text: a full PublicEntities answer is
            // tens of megabytes, and a document tree of all of it would be several times that.
            if let Some((index, raw)) = page_of.value.iter().enumerate().find(|(_, raw)| raw.get().len() > MAX_ITEM_BYTES) {
                return Err(Error::parse(format!(
                    "{collection} item {} is {:.1} MiB of JSON; an item may have at most {} MiB (from {what})",
                    items.len() + index + 1,
                    raw.get().len() as f64 / f64::from(1 << 20),
                    MAX_ITEM_BYTES >> 20
                )));
            }
            match read(&page_of.value) {
                Ok(read) => items.extend(read),
                Err(PageError::Item(index, m)) => {
                    return Err(Error::parse(format!("{collection} item {}{m} (from {what})", items.len() + index + 1)));
                }
                Err(PageError::Store(e)) => return Err(e),
            }
            break page_of.next_link;
        };
        ctx.host.progress(&Progress { phase: phase.clone(), done: items.len() as u64, total: None, bytes: Some(bytes) });
        let Some(next) = next else { return Ok(items) };
        let next = resolve_next_link(&base_url, &format!("{base_url}{path}"), &next)?;
        // The link is followed as a path under the environment, which is all the host lets the
        // component name anyway: a link elsewhere is refused here, with a clear message.
        let Some(next_path) = next.strip_prefix(&base_url).filter(|p| p.starts_with('/')) else {
            return Err(Error::new(
                ErrorKind::Service,
                format!("{what}: @odata.nextLink leads outside the environment ({}); refusing to follow it", shorten(&next)),
            ));
        };
        if !seen.insert(next_path.to_owned()) {
            return Err(Error::new(
                ErrorKind::Service,
                format!("{what}: @odata.nextLink repeats an earlier page ({}) after {page} pages", shorten(&next)),
            ));
        }
        path = next_path.to_owned();
    }
    Err(Error::new(ErrorKind::Service, format!("{base_url}/Metadata/{collection}: more than {MAX_PAGES} pages")))
}

#[derive(serde::Deserialize)]
pub(crate) struct Envelope<'a> {
    #[serde(borrow)]
    pub(crate) value: Vec<&'a RawValue>,
    #[serde(rename = "@odata.nextLink")]
    next_link: Option<String>,
}

/// The items (unparsed) and next link of a collection page. A body that is not a collection is
/// described precisely; one that ends early or is not JSON at all is told apart, since asking
/// again may help.
pub(crate) fn envelope(body: &[u8]) -> Result<Envelope<'_>, Failure> {
    let text = std::str::from_utf8(body).map_err(|e| Failure::Garbled(format!("the answer is not UTF-8 ({e})")))?;
    // serde would also read the struct from a JSON array (`[[], ""]`): only an object is a page.
    let page = if text.trim_start().starts_with('{') { serde_json::from_str::<Envelope<'_>>(text).map_err(Some) } else { Err(None) };
    match page {
        Ok(page) => Ok(page),
        Err(error) => Err(match serde_json::from_str::<Json>(text) {
            Err(e) if odata::ends_early(&e) => {
                Failure::Truncated(format!("the answer ends before its JSON is complete ({} bytes; {e})", body.len()))
            }
            Err(e) => Failure::Garbled(format!("response is not valid JSON ({e})")),
            Ok(Json::Object(o)) => Failure::Body(match o.get("value") {
                None => "the answer has no \"value\" collection".to_owned(),
                Some(v) if !v.is_array() => format!("\"value\" is {}, expected an array", odata::kind_of(v)),
                Some(_) => match error {
                    Some(error) => format!("the collection could not be read ({error})"),
                    None => "the collection could not be read".to_owned(),
                },
            }),
            Ok(other) => Failure::Body(format!("expected a collection object, found {}", odata::kind_of(&other))),
        }),
    }
}

/// A nextLink may be absolute or relative to the service root.
pub(crate) fn resolve_next_link(base_url: &str, current: &str, next: &str) -> Result<String> {
    if next.contains("://") {
        return Ok(next.to_owned());
    }
    if let Some(path) = next.strip_prefix('/') {
        let origin_end = base_url.find("://").map(|i| i + 3).and_then(|s| base_url[s..].find('/').map(|j| s + j)).unwrap_or(base_url.len());
        return Ok(format!("{}/{path}", &base_url[..origin_end]));
    }
    let dir = current.split('?').next().unwrap_or(current);
    let dir = &dir[..dir.rfind('/').map_or(dir.len(), |i| i + 1)];
    Ok(format!("{dir}{next}"))
}

pub fn label_path(label_id: &str, language: &str) -> String {
    format!("/Metadata/Labels(Id={},Language={})", odata_string_literal(label_id), odata_string_literal(language))
}

/// The answer for one label.
#[derive(Clone, Debug, PartialEq)]
pub enum LabelAnswer {
    Text(String),
    /// The service has no text for this id in this language.
    Missing,
    /// The request failed; the message names the label and why, and the flag says whether
    /// asking again may help (the answer arrived cut off or garbled).
    Failed(Error, bool),
}

/// The request for one label's text.
pub fn label_request(label_id: &str, language: &str) -> HttpRequest {
    odata::request(Method::Get, label_path(label_id, language))
}

/// Reads one label's answer (and counts it).
pub fn label_answer(
    meter: &mut Meter,
    base_url: &str,
    request: &HttpRequest,
    id: &str,
    language: &str,
    answer: Result<HttpResponse, HttpError>,
) -> LabelAnswer {
    let what = format!("label {id} ({language}), {}", odata::describe(base_url, request));
    let response = match answer {
        Ok(r) => r,
        Err(e) => return LabelAnswer::Failed(e.into_error(&what), false),
    };
    meter.count(&response);
    if response.status == 404 {
        return LabelAnswer::Missing;
    }
    if let Err(f) = odata::check_status(&response) {
        return LabelAnswer::Failed(f.into_error(&what), false);
    }
    match label_text(&response.body) {
        Ok(Some(text)) => LabelAnswer::Text(text),
        Ok(None) => LabelAnswer::Missing,
        Err(f) => {
            let transient = f.is_transient();
            LabelAnswer::Failed(f.into_error(&what), transient)
        }
    }
}

/// `{"Id": ..., "Language": ..., "Value": "text"}`; also accepted inside a one-item collection.
/// A null `Value` means the label has no text.
pub(crate) fn label_text(body: &[u8]) -> Result<Option<String>, Failure> {
    let json = odata::parse_json(body)?;
    let item = match &json {
        Json::Object(o) if o.contains_key("Value") => &json,
        Json::Object(o) => match o.get("value") {
            Some(Json::Array(items)) if items.len() == 1 => &items[0],
            Some(Json::Array(items)) if items.is_empty() => return Ok(None),
            _ => return Err(Failure::Body("expected a label with a \"Value\"".to_owned())),
        },
        other => return Err(Failure::Body(format!("expected a label object, found {}", odata::kind_of(other)))),
    };
    match item.get("Value") {
        Some(Json::String(s)) => Ok(Some(s.clone())),
        Some(Json::Null) => Ok(None),
        Some(other) => Err(Failure::Body(format!("the label's Value is {}", odata::kind_of(other)))),
        None => Err(Failure::Body("the label has no \"Value\"".to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_links_resolve_against_the_service() {
        let base = "http://h:1/env";
        assert_eq!(
            resolve_next_link(base, "http://h:1/env/Metadata/X", "http://h:1/env/Metadata/X?$skip=5").unwrap(),
            "http://h:1/env/Metadata/X?$skip=5"
        );
        assert_eq!(
            resolve_next_link(base, "http://h:1/env/Metadata/X", "/env/Metadata/X?$skip=5").unwrap(),
            "http://h:1/env/Metadata/X?$skip=5"
        );
        assert_eq!(resolve_next_link(base, "http://h:1/env/Metadata/X?$skip=2", "X?$skip=5").unwrap(), "http://h:1/env/Metadata/X?$skip=5");
    }

    #[test]
    fn collection_pages_are_read_item_by_item_and_bad_ones_described() {
        let page =
            envelope(br#"{"@odata.context": "x", "value": [{"Name": "A"}, {"Name": "B"}], "@odata.nextLink": "http://h/n"}"#).unwrap();
        assert_eq!(page.value.len(), 2);
        assert_eq!(page.value[1].get(), r#"{"Name": "B"}"#);
        assert_eq!(page.next_link.as_deref(), Some("http://h/n"));
        assert!(envelope(br#"{"value": []}"#).unwrap().next_link.is_none());
        let message = |body: &[u8]| envelope(body).err().unwrap().message().to_owned();
        assert_eq!(message(br#"{"odata": 1}"#), "the answer has no \"value\" collection");
        assert_eq!(message(br#"{"value": 3}"#), "\"value\" is a number, expected an array");
        assert_eq!(message(br#"[1]"#), "expected a collection object, found an array");
        assert!(matches!(envelope(b"<html>"), Err(Failure::Garbled(m)) if m.starts_with("response is not valid JSON")));
        assert!(matches!(envelope(br#"{"value": [{"Name": "A"}, {"Na"#), Err(Failure::Truncated(_))));
        // Found by fuzzing: serde reads a struct from an array too, which made `[[], ""]` an empty page.
        assert_eq!(message(br#"[[], ""]"#), "expected a collection object, found an array");
    }

    #[test]
    fn label_urls_quote_their_keys() {
        assert_eq!(label_path("@SYS13342", "en-US"), "/Metadata/Labels(Id='@SYS13342',Language='en-US')");
        assert_eq!(label_path("@X:it's", "de"), "/Metadata/Labels(Id='@X:it''s',Language='de')");
    }

    #[test]
    fn label_bodies() {
        assert_eq!(label_text(br#"{"Id":"@SYS1","Language":"en-US","Value":"Company"}"#).unwrap(), Some("Company".into()));
        assert_eq!(label_text(br#"{"value":[{"Id":"@SYS1","Value":"Firma"}]}"#).unwrap(), Some("Firma".into()));
        assert_eq!(label_text(br#"{"Id":"@SYS1","Value":null}"#).unwrap(), None);
        assert!(label_text(br#"{"Id":"@SYS1"}"#).is_err());
    }
}
