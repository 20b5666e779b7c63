//! The metadata service's endpoints (see WIRE.md).

use super::body::Chunks;
use super::cache::{Collection, DatasetCache, Kind};
use super::filter::Filter;
use super::odata::{encode_query, error_body, key_segment, parse_query, percent_decode};
use bytes::Bytes;
use hyper::{Method, Response, StatusCode, header};
use serde_json::Value;
use std::sync::Arc;

pub(crate) const ODATA_JSON: &str = "application/json; odata.metadata=minimal";
const MODULES_ACTION: &str = "/data/SystemNotifications/Microsoft.Dynamics.DataEntities.GetInstalledModules";
const APPLICATION_VERSION_ACTION: &str = "/data/DataManagementEntities/Microsoft.Dynamics.DataEntities.GetApplicationVersion";
const PLATFORM_VERSION_ACTION: &str = "/data/DataManagementEntities/Microsoft.Dynamics.DataEntities.GetPlatformBuildVersion";

/// What a request is answered from: one environment's state at the time of the request.
pub(crate) struct Env<'a> {
    pub base: &'a str,
    pub cache: &'a DatasetCache,
    pub modules: &'a [String],
    pub page_size: Option<usize>,
}

pub(crate) fn json(status: StatusCode, body: impl Into<Chunks>) -> Response<Chunks> {
    let mut response = Response::new(body.into());
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static(ODATA_JSON));
    response
}

pub(crate) fn error(status: StatusCode, code: &str, message: &str) -> Response<Chunks> {
    json(status, error_body(code, message))
}

fn not_found(path: &str) -> Response<Chunks> {
    error(StatusCode::NOT_FOUND, "NotFound", &format!("No HTTP resource was found that matches the request URI '{path}'."))
}

fn bad_request(message: &str) -> Response<Chunks> {
    error(StatusCode::BAD_REQUEST, "BadRequest", message)
}

fn method_not_allowed(allowed: Method) -> Response<Chunks> {
    let mut r = error(
        StatusCode::METHOD_NOT_ALLOWED,
        "MethodNotAllowed",
        &format!("The requested resource does not support this HTTP method; use {allowed}."),
    );
    if let Ok(value) = header::HeaderValue::from_str(allowed.as_str()) {
        r.headers_mut().insert(header::ALLOW, value);
    }
    r
}

pub(crate) async fn route(env: &Env<'_>, method: &Method, path_and_query: &str) -> Response<Chunks> {
    let (raw_path, query) = path_and_query.split_once('?').unwrap_or((path_and_query, ""));
    let decoded = percent_decode(raw_path, false);
    let path = decoded.strip_suffix('/').unwrap_or(&decoded);
    let action = match path {
        MODULES_ACTION => Some(string_collection(env, env.modules)),
        APPLICATION_VERSION_ACTION => Some(string_value(env, &env.cache.dataset().application_version)),
        PLATFORM_VERSION_ACTION => Some(string_value(env, &env.cache.dataset().platform_version)),
        _ => None,
    };
    if let Some(answer) = action {
        return if method == Method::POST { answer } else { method_not_allowed(Method::POST) };
    }
    let Some(segment) = path.strip_prefix("/Metadata/") else {
        return not_found(path);
    };
    if method != Method::GET {
        return method_not_allowed(Method::GET);
    }
    if let Some(kind) = Kind::from_set(segment) {
        return collection(env, kind, query).await;
    }
    let Some((set, args)) = key_segment(segment) else {
        return not_found(path);
    };
    if set == "Labels" {
        return label(env, &args);
    }
    let Some(kind) = Kind::from_set(set) else {
        return not_found(path);
    };
    match args.as_slice() {
        [(name, key)] if name.as_deref().is_none_or(|n| n == "Name") => single(env, kind, key).await,
        _ => bad_request(&format!("The key in '{segment}' is not a single Name.")),
    }
}

fn string_collection(env: &Env, values: &[String]) -> Response<Chunks> {
    let body = serde_json::json!({"@odata.context": format!("{}/data/$metadata#Collection(Edm.String)", env.base), "value": values});
    json(StatusCode::OK, body.to_string())
}

fn string_value(env: &Env, value: &str) -> Response<Chunks> {
    let body = serde_json::json!({"@odata.context": format!("{}/data/$metadata#Edm.String", env.base), "value": value});
    json(StatusCode::OK, body.to_string())
}

fn label(env: &Env, args: &[(Option<String>, String)]) -> Response<Chunks> {
    let named = |name: &str, position: usize| {
        args.iter()
            .find(|(n, _)| n.as_deref() == Some(name))
            .or_else(|| args.get(position).filter(|(n, _)| n.is_none()))
            .map(|(_, v)| v.as_str())
    };
    let (Some(id), Some(language)) = (named("Id", 0), named("Language", 1)) else {
        return bad_request("A label is addressed as Labels(Id='<id>',Language='<language>').");
    };
    match env.cache.dataset().labels.get(id, language) {
        Some(text) => {
            let body = serde_json::json!({
                "@odata.context": format!("{}/Metadata/$metadata#Labels/$entity", env.base),
                "Id": id, "Language": language, "Value": text,
            });
            json(StatusCode::OK, body.to_string())
        }
        None => error(StatusCode::NOT_FOUND, "NotFound", &format!("Label '{id}' was not found for language '{language}'.")),
    }
}

async fn single(env: &Env<'_>, kind: Kind, key: &str) -> Response<Chunks> {
    let c = env.cache.collection(kind).await;
    let Some(i) = c.position(key) else {
        return error(StatusCode::NOT_FOUND, "NotFound", &format!("{} '{key}' was not found.", kind.set_name()));
    };
    let item = c.item(i);
    let mut body = Chunks::default();
    body.push(format!("{{\"@odata.context\":\"{}/Metadata/$metadata#{}/$entity\",", env.base, kind.set_name()));
    body.push(item.slice(1..));
    json(StatusCode::OK, body)
}

struct Options {
    top: Option<usize>,
    skip: usize,
    select: Option<Vec<String>>,
    filter: Option<Filter>,
    count: bool,
    /// Everything but `$top` and `$skip`, as given: kept in next links.
    others: Vec<(String, String)>,
}

fn options(query: &str) -> Result<Options, String> {
    let mut o = Options { top: None, skip: 0, select: None, filter: None, count: false, others: Vec::new() };
    for (name, value) in parse_query(query) {
        let number = || value.trim().parse::<usize>().map_err(|_| format!("{name} must be a non-negative integer, not '{value}'"));
        match name.as_str() {
            "$top" => o.top = Some(number()?),
            "$skip" => o.skip = number()?,
            _ => {
                match name.as_str() {
                    "$select" => {
                        let fields: Vec<String> = value.split(',').map(|f| f.trim().to_string()).filter(|f| !f.is_empty()).collect();
                        o.select = (!fields.is_empty() && fields.iter().all(|f| f != "*")).then_some(fields);
                    }
                    "$filter" => o.filter = Some(Filter::parse(&value).map_err(|e| format!("$filter '{value}': {e}"))?),
                    "$count" => o.count = value == "true",
                    _ => {}
                }
                o.others.push((name, value));
            }
        }
    }
    Ok(o)
}

/// The items of a collection, filtered, as indices (`None`: all of them, in order).
fn matching(c: &Collection, filter: Option<&Filter>) -> Result<Option<Vec<usize>>, String> {
    let Some(filter) = filter else { return Ok(None) };
    let mut found = Vec::new();
    for (i, item) in c.scalars().iter().enumerate() {
        if filter.matches(item)? {
            found.push(i);
        }
    }
    Ok(Some(found))
}

/// The selected fields of item `i`. Selections of scalar fields only (the usual `$select=Name,…`)
/// read the cached scalars instead of parsing the item again.
fn selected(c: &Collection, i: usize, fields: &[String]) -> String {
    let scalars = &c.scalars()[i];
    let parsed;
    let object = if fields.iter().all(|f| scalars.contains_key(f)) {
        scalars
    } else {
        parsed = c.object(i);
        &parsed
    };
    let members: Vec<String> =
        fields.iter().map(|f| format!("{}:{}", Value::from(f.as_str()), object.get(f).unwrap_or(&Value::Null))).collect();
    format!("{{{}}}", members.join(","))
}

async fn collection(env: &Env<'_>, kind: Kind, query: &str) -> Response<Chunks> {
    let o = match options(query) {
        Ok(o) => o,
        Err(message) => return bad_request(&message),
    };
    let c: Arc<Collection> = env.cache.collection(kind).await;
    if let (Some(fields), Some(first)) = (&o.select, (c.len() > 0).then(|| c.object(0)))
        && let Some(unknown) = fields.iter().find(|f| !first.contains_key(f.as_str()))
    {
        return bad_request(&format!("Could not find a property named '{unknown}' on type '{}'.", kind.set_name()));
    }
    let found = match matching(&c, o.filter.as_ref()) {
        Ok(found) => found,
        Err(message) => return bad_request(&message),
    };
    let total = found.as_ref().map_or(c.len(), Vec::len);
    let start = o.skip.min(total);
    let end = o.top.map_or(total, |top| start.saturating_add(top).min(total));
    let page_end = env.page_size.map_or(end, |size| start.saturating_add(size.max(1)).min(end));

    let mut body = Chunks::default();
    let context = match &o.select {
        Some(fields) => format!("{}/Metadata/$metadata#{}({})", env.base, kind.set_name(), fields.join(",")),
        None => format!("{}/Metadata/$metadata#{}", env.base, kind.set_name()),
    };
    let count = if o.count { format!(",\"@odata.count\":{total}") } else { String::new() };
    body.push(format!("{{\"@odata.context\":{}{count},\"value\":[", Value::from(context)));
    let position = |k: usize| found.as_ref().map_or(k, |f| f[k]);
    match (&o.select, &found) {
        (None, None) => body.push(c.run(start..page_end)),
        _ => {
            for k in start..page_end {
                if k > start {
                    body.push(Bytes::from_static(b","));
                }
                match &o.select {
                    Some(fields) => body.push(selected(&c, position(k), fields)),
                    None => body.push(c.item(position(k))),
                }
            }
        }
    }
    body.push(Bytes::from_static(b"]"));
    if page_end < end {
        let mut next = o.others.clone();
        if let Some(top) = o.top {
            next.push(("$top".to_string(), (top - (page_end - start)).to_string()));
        }
        next.push(("$skip".to_string(), page_end.to_string()));
        let link = format!("{}/Metadata/{}?{}", env.base, kind.set_name(), encode_query(&next));
        body.push(format!(",\"@odata.nextLink\":{}", Value::from(link)));
    }
    body.push(Bytes::from_static(b"}"));
    json(StatusCode::OK, body)
}
