//! The simulator over real loopback HTTP.

mod common;

use common::{Connection, get, get_all, post, request};
use d365meta_simulator::model::{DataEntity, Enumeration, PublicEntity};
use d365meta_simulator::{Dataset, EnvironmentSpec, Fault, FaultKind, Scale, Simulator};
use serde_json::Value;
use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

fn tiny() -> Arc<Dataset> {
    static TINY: OnceLock<Arc<Dataset>> = OnceLock::new();
    TINY.get_or_init(|| Arc::new(Dataset::generate(Scale::Tiny))).clone()
}

fn small() -> Arc<Dataset> {
    static SMALL: OnceLock<Arc<Dataset>> = OnceLock::new();
    SMALL.get_or_init(|| Arc::new(Dataset::generate(Scale::Small))).clone()
}

async fn start(spec: EnvironmentSpec) -> Simulator {
    Simulator::start(LOOPBACK, vec![spec]).await.expect("simulator starts")
}

fn keys(v: &Value) -> Vec<&str> {
    v.as_object().expect("object").keys().map(String::as_str).collect::<BTreeSet<_>>().into_iter().collect()
}

fn sorted(mut names: Vec<&'static str>) -> Vec<&'static str> {
    names.sort_unstable();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_answers_the_wire_shapes() {
    let d = tiny();
    let sim = start(EnvironmentSpec::new("contoso", d.clone())).await;
    let env = sim.env(0);
    let base = env.base_url();
    assert!(base.starts_with("http://127.0.0.1:"));

    let r = post(&format!("{base}/data/SystemNotifications/Microsoft.Dynamics.DataEntities.GetInstalledModules")).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json; odata.metadata=minimal"));
    let body = r.json();
    assert_eq!(body["@odata.context"], format!("{base}/data/$metadata#Collection(Edm.String)"));
    assert_eq!(body["value"], serde_json::to_value(&d.modules).expect("json"));
    for (action, expected) in [("GetApplicationVersion", "10.0.2095.37"), ("GetPlatformBuildVersion", "7.0.7690.53")] {
        let r = post(&format!("{base}/data/DataManagementEntities/Microsoft.Dynamics.DataEntities.{action}")).await;
        assert_eq!(r.json(), serde_json::json!({"@odata.context": format!("{base}/data/$metadata#Edm.String"), "value": expected}));
    }

    let r = get(&format!("{base}/Metadata/DataEntities")).await;
    let body = r.json();
    assert_eq!(body["@odata.context"], format!("{base}/Metadata/$metadata#DataEntities"));
    assert!(body.get("@odata.nextLink").is_none());
    let items: Vec<DataEntity> = serde_json::from_value(body["value"].clone()).expect("data entities");
    assert_eq!(items, d.data_entities);
    assert_eq!(
        keys(&body["value"][0]),
        sorted(vec![
            "Name",
            "PublicEntityName",
            "PublicCollectionName",
            "LabelId",
            "EntityCategory",
            "DataServiceEnabled",
            "DataManagementEnabled",
            "IsReadOnly"
        ])
    );
    let body = get(&format!("{base}/Metadata/PublicEntities")).await.json();
    let items: Vec<PublicEntity> = serde_json::from_value(body["value"].clone()).expect("public entities");
    assert_eq!(items, d.public_entities);
    let customer = body["value"].as_array().expect("array").iter().find(|e| e["Name"] == "CustomerV3").expect("CustomerV3");
    assert_eq!(
        keys(customer),
        sorted(vec![
            "Name",
            "EntitySetName",
            "LabelId",
            "IsReadOnly",
            "ConfigurationEnabled",
            "Properties",
            "NavigationProperties",
            "PropertyGroups",
            "Actions"
        ])
    );
    assert_eq!(
        keys(&customer["Properties"][0]),
        sorted(vec![
            "Name",
            "TypeName",
            "DataType",
            "LabelId",
            "IsKey",
            "IsMandatory",
            "ConfigurationEnabled",
            "AllowEdit",
            "AllowEditOnCreate",
            "IsDimension",
            "DimensionRelation",
            "IsDynamicDimension",
            "DimensionLegalEntityProperty",
            "DimensionTypeProperty"
        ])
    );
    let nav = &customer["NavigationProperties"][0];
    assert_eq!(keys(nav), sorted(vec!["Name", "RelatedEntity", "RelatedRelationName", "Cardinality", "Constraints"]));
    let action = customer["Actions"].as_array().expect("actions").iter().find(|a| a["Name"] == "GetCreditLimit").expect("action");
    assert_eq!(
        action,
        &serde_json::json!({"Name": "GetCreditLimit", "BindingKind": "BoundToEntityInstance", "FieldLookup": null,
            "Parameters": [{"Name": "asOfDate", "Type": {"TypeName": "Edm.Date", "IsCollection": false}}],
            "ReturnType": {"TypeName": "Edm.Decimal", "IsCollection": false}})
    );
    let constraint = customer["NavigationProperties"]
        .as_array()
        .expect("navs")
        .iter()
        .flat_map(|n| n["Constraints"].as_array().expect("constraints"))
        .next()
        .expect("a constraint");
    assert!(constraint["@odata.type"].as_str().is_some_and(|t| t.starts_with("#Microsoft.Dynamics.Metadata.")));

    let body = get(&format!("{base}/Metadata/PublicEnumerations")).await.json();
    let items: Vec<Enumeration> = serde_json::from_value(body["value"].clone()).expect("enumerations");
    assert_eq!(items, d.enumerations);
    let no_yes = get(&format!("{base}/Metadata/PublicEnumerations('NoYes')")).await.json();
    assert_eq!(no_yes["@odata.context"], format!("{base}/Metadata/$metadata#PublicEnumerations/$entity"));
    assert_eq!(no_yes["Members"][1], serde_json::json!({"Name": "Yes", "Value": 1, "LabelId": "@SYS1961", "ConfigurationEnabled": true}));

    let one = get(&format!("{base}/Metadata/DataEntities('CustCustomerV3Entity')")).await.json();
    assert_eq!(one["PublicCollectionName"], "CustomersV3");
    let one = get(&format!("{base}/Metadata/PublicEntities(Name='CustomerV3')")).await.json();
    let entity: PublicEntity = serde_json::from_value(one).expect("entity");
    assert_eq!(Some(&entity), d.public_entity("CustomerV3"));

    let label = get(&format!("{base}/Metadata/Labels(Id='@SYS13342',Language='en-US')")).await;
    assert_eq!(label.status, 200);
    let label = label.json();
    assert_eq!(
        (&label["Id"], &label["Language"], &label["Value"]),
        (&Value::from("@SYS13342"), &Value::from("en-US"), &Value::from("Company"))
    );
    let encoded = get(&format!("{base}/Metadata/Labels(Id=%27%40SYS13342%27,Language=%27de%27)")).await;
    assert_eq!(encoded.status, if d.labels.get("@SYS13342", "de").is_some() { 200 } else { 404 });

    let dangling = d.label_ids().into_iter().find(|id| !d.labels.contains_id(id)).expect("a dangling id");
    for url in [
        format!("{base}/Metadata/Labels(Id='{dangling}',Language='en-US')"),
        format!("{base}/Metadata/Labels(Id='@SYS13342',Language='xx-XX')"),
        format!("{base}/Metadata/Labels(Id='@NoSuch:Label',Language='en-US')"),
        format!("{base}/Metadata/DataEntities('NoSuchEntity')"),
        format!("{base}/Metadata/NoSuchSet"),
        format!("{base}/nothing/here"),
    ] {
        let r = get(&url).await;
        assert_eq!(r.status, 404, "{url}");
        let error = &r.json()["error"];
        assert!(error["code"].is_string() && error["message"].is_string(), "{url}: {}", r.text());
    }
    assert_eq!(get(&format!("{base}/data/SystemNotifications/Microsoft.Dynamics.DataEntities.GetInstalledModules")).await.status, 405);
    assert_eq!(post(&format!("{base}/Metadata/DataEntities")).await.status, 405);

    assert_eq!(env.requests().len(), 19);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responses_carry_unique_activity_ids() {
    let sim = start(EnvironmentSpec::new("contoso", tiny())).await;
    let base = sim.env(0).base_url();
    let mut connection = Connection::open(&base).await.expect("connects");
    let mut ids = BTreeSet::new();
    for path in ["/Metadata/DataEntities", "/Metadata/DataEntities", "/nothing"] {
        let r = connection.send("GET", path, &[], b"").await.expect("answer on a kept-alive connection");
        let aid = r.header("ms-dyn-aid").expect("ms-dyn-aid").to_string();
        assert_eq!(aid.len(), 36);
        ids.insert(aid);
        assert_eq!(r.header("content-type"), Some("application/json; odata.metadata=minimal"));
    }
    assert_eq!(ids.len(), 3);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paging_follows_next_links_to_the_whole_collection() {
    let d = small();
    let mut spec = EnvironmentSpec::new("paged", d.clone());
    spec.page_size = Some(37);
    let sim = start(spec).await;
    let env = sim.env(0);
    let base = env.base_url();

    let (items, pages) = get_all(&format!("{base}/Metadata/DataEntities")).await;
    assert_eq!(pages, d.data_entities.len().div_ceil(37));
    assert_eq!(serde_json::from_value::<Vec<DataEntity>>(Value::Array(items)).expect("items"), d.data_entities);
    let (items, _) = get_all(&format!("{base}/Metadata/PublicEntities")).await;
    assert_eq!(serde_json::from_value::<Vec<PublicEntity>>(Value::Array(items)).expect("items"), d.public_entities);
    let (items, _) = get_all(&format!("{base}/Metadata/PublicEnumerations")).await;
    assert_eq!(items.len(), d.enumerations.len());

    let first = get(&format!("{base}/Metadata/DataEntities?$select=Name&$top=50")).await.json();
    let link = first["@odata.nextLink"].as_str().expect("next link");
    assert!(link.starts_with(&format!("{base}/Metadata/DataEntities?")), "{link}");
    assert!(link.contains("$select=Name") && link.contains("$top=13") && link.contains("$skip=37"), "{link}");
    let (items, pages) = get_all(&format!("{base}/Metadata/DataEntities?$select=Name&$top=50")).await;
    assert_eq!((items.len(), pages), (50, 2));
    let names: Vec<&str> = items.iter().map(|i| i["Name"].as_str().expect("name")).collect();
    let expected: Vec<&str> = d.data_entities.iter().take(50).map(|e| e.name.as_str()).collect();
    assert_eq!(names, expected);

    let filter = "startswith(Name,'Cust')";
    let (items, _) = get_all(&format!("{base}/Metadata/DataEntities?$filter={filter}")).await;
    let expected = d.data_entities.iter().filter(|e| e.name.starts_with("Cust")).count();
    assert_eq!(items.len(), expected);

    env.set_page_size(None);
    env.clear_requests();
    let (items, pages) = get_all(&format!("{base}/Metadata/DataEntities")).await;
    assert_eq!((items.len(), pages, env.requests().len()), (d.data_entities.len(), 1, 1));
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_options_select_filter_and_window() {
    let d = small();
    let sim = start(EnvironmentSpec::new("contoso", d.clone())).await;
    let base = sim.env(0).base_url();

    let page = get(&format!("{base}/Metadata/DataEntities?$skip=10&$top=5")).await.json();
    let names: Vec<&str> = page["value"].as_array().expect("value").iter().map(|i| i["Name"].as_str().expect("name")).collect();
    let expected: Vec<&str> = d.data_entities[10..15].iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, expected);
    let beyond = get(&format!("{base}/Metadata/DataEntities?$skip=100000")).await.json();
    assert_eq!(beyond["value"], serde_json::json!([]));

    let page = get(&format!("{base}/Metadata/DataEntities?$select=Name,%20LabelId&$top=3")).await.json();
    assert_eq!(page["@odata.context"], format!("{base}/Metadata/$metadata#DataEntities(Name,LabelId)"));
    let first = page["value"][0].as_object().expect("object");
    assert_eq!(first.keys().collect::<Vec<_>>(), ["LabelId", "Name"]);
    assert_eq!(first["Name"], d.data_entities[0].name.as_str());

    let page = get(&format!("{base}/Metadata/DataEntities?$filter=Name%20eq%20%27CustCustomerV3Entity%27")).await.json();
    assert_eq!(page["value"].as_array().map(Vec::len), Some(1));
    assert_eq!(page["value"][0]["PublicEntityName"], "CustomerV3");
    let page = get(&format!("{base}/Metadata/DataEntities?$filter=Name+eq+'CustCustomerV3Entity'&$select=LabelId")).await.json();
    assert_eq!(page["value"], serde_json::json!([{"LabelId": "@AccountsReceivable:CustomersV3"}]));
    let page = get(&format!("{base}/Metadata/DataEntities?$filter=DataServiceEnabled%20eq%20false&$count=true")).await.json();
    let disabled = d.data_entities.iter().filter(|e| !e.data_service_enabled).count();
    assert_eq!(page["@odata.count"], disabled);
    assert_eq!(page["value"].as_array().map(Vec::len), Some(disabled));
    let page = get(&format!("{base}/Metadata/PublicEntities?$filter=Name%20eq%20'CustomerGroup'&$select=Name,EntitySetName")).await.json();
    assert_eq!(page["value"], serde_json::json!([{"Name": "CustomerGroup", "EntitySetName": "CustomerGroups"}]));

    for bad in ["$top=-1", "$skip=x", "$select=NoSuchField", "$filter=Name%20eq", "$filter=NoSuch%20eq%201"] {
        let r = get(&format!("{base}/Metadata/DataEntities?{bad}")).await;
        assert_eq!(r.status, 400, "{bad}");
        assert!(r.json()["error"]["message"].is_string());
    }
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_literals_undouble_quotes() {
    let mut d = Dataset::generate(Scale::Tiny);
    d.data_entities[0].name = "O'Brien".to_string();
    d.labels.insert("@Test:O'Brien", "en-US", "O'Brien's label");
    let sim = start(EnvironmentSpec::new("quotes", Arc::new(d))).await;
    let base = sim.env(0).base_url();
    for url in [
        format!("{base}/Metadata/DataEntities('O''Brien')"),
        format!("{base}/Metadata/DataEntities(%27O%27%27Brien%27)"),
        format!("{base}/Metadata/DataEntities(Name='O''Brien')"),
    ] {
        let r = get(&url).await;
        assert_eq!(r.status, 200, "{url}");
        assert_eq!(r.json()["Name"], "O'Brien");
    }
    assert_eq!(get(&format!("{base}/Metadata/DataEntities('O'Brien')")).await.status, 404);
    let label = get(&format!("{base}/Metadata/Labels(Id='@Test:O''Brien',Language='en-US')")).await;
    assert_eq!(label.json()["Value"], "O'Brien's label");
    let label = get(&format!("{base}/Metadata/Labels(Language='en-US',Id='%40Test%3AO%27%27Brien')")).await;
    assert_eq!(label.json()["Id"], "@Test:O'Brien");
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_answer_then_wear_off() {
    let sim = start(EnvironmentSpec::new("faulty", tiny())).await;
    let env = sim.env(0);
    let base = env.base_url();
    let label = format!("{base}/Metadata/Labels(Id='@SYS13342',Language='en-US')");

    env.inject(Fault::throttle("/Metadata/Labels", 2, 1));
    for _ in 0..2 {
        let r = get(&label).await;
        assert_eq!(r.status, 429);
        assert_eq!(r.header("retry-after"), Some("1"));
        assert!(r.header("ms-dyn-aid").is_some());
        assert!(r.json()["error"]["code"].is_string());
    }
    assert_eq!(get(&label).await.status, 200);
    let statuses: Vec<u16> = env.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [429, 429, 200]);

    env.inject(Fault::new("DataEntities", 1, FaultKind::Delay(Duration::from_millis(300))));
    let start = Instant::now();
    assert_eq!(get(&format!("{base}/Metadata/DataEntities")).await.status, 200);
    assert!(start.elapsed() >= Duration::from_millis(300));

    env.inject(Fault::new("PublicEntities", 1, FaultKind::Close));
    assert!(request("GET", &format!("{base}/Metadata/PublicEntities"), &[], b"").await.is_err());
    assert_eq!(env.requests().last().map(|r| r.status), Some(0));
    assert_eq!(get(&format!("{base}/Metadata/PublicEntities")).await.status, 200);

    env.inject(Fault::new("GetInstalledModules", 1, FaultKind::Body("{\"value\":\"not a list\"}".to_string())));
    let r = post(&format!("{base}/data/SystemNotifications/Microsoft.Dynamics.DataEntities.GetInstalledModules")).await;
    assert_eq!((r.status, r.text().as_str()), (200, "{\"value\":\"not a list\"}"));

    env.inject(Fault::new("Enumerations", 1, FaultKind::Status { status: 503, retry_after: None, body: Some("down".to_string()) }));
    let r = get(&format!("{base}/Metadata/PublicEnumerations")).await;
    assert_eq!((r.status, r.text().as_str()), (503, "down"));
    env.inject(Fault::status("never-requested", 1, 500));
    env.clear_faults();
    assert_eq!(get(&format!("{base}/Metadata/PublicEnumerations")).await.status, 200);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_request_log_counts_every_request() {
    let sim = start(EnvironmentSpec::new("logged", tiny())).await;
    let env = sim.env(0);
    let base = env.base_url();
    let headers = [("Authorization", "Bearer abc"), ("x-ms-client-request-id", "11111111-2222-3333-4444-555555555555")];
    for _ in 0..3 {
        request("GET", &format!("{base}/Metadata/DataEntities?$top=1"), &headers, b"").await.expect("answer");
    }
    post(&format!("{base}/data/DataManagementEntities/Microsoft.Dynamics.DataEntities.GetApplicationVersion")).await;
    let log = env.requests();
    assert_eq!(log.len(), 4);
    assert_eq!(log[0].method, "GET");
    assert_eq!(log[0].path_and_query, "/Metadata/DataEntities?$top=1");
    assert_eq!(log[0].authorization.as_deref(), Some("Bearer abc"));
    assert_eq!(log[0].client_request_id.as_deref(), Some(headers[1].1));
    assert_eq!(log[3].method, "POST");
    assert!(log.windows(2).all(|w| w[0].at <= w[1].at));
    env.clear_requests();
    assert!(env.requests().is_empty());
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bearer_tokens_are_required_and_issued() {
    let mut spec = EnvironmentSpec::new("secured", tiny());
    spec.require_bearer = Some("issued-token".to_string());
    let sim = start(spec).await;
    let base = sim.env(0).base_url();
    let url = format!("{base}/Metadata/DataEntities");

    let denied = get(&url).await;
    assert_eq!(denied.status, 401);
    assert_eq!(denied.header("www-authenticate"), Some("Bearer"));
    assert!(denied.json()["error"]["message"].is_string());
    let wrong = request("GET", &url, &[("Authorization", "Bearer other")], b"").await.expect("answer");
    assert_eq!(wrong.status, 401);

    sim.set_credentials("my-client", "my-secret", "issued-token");
    let endpoint = sim.token_endpoint("contoso.onmicrosoft.com");
    assert!(endpoint.starts_with("http://127.0.0.1:") && endpoint.ends_with("/contoso.onmicrosoft.com/oauth2/v2.0/token"));
    let form = |secret: &str| {
        format!(
            "grant_type=client_credentials&client_id=my-client&client_secret={secret}&scope={}",
            format!("{base}/.default").replace(':', "%3A").replace('/', "%2F")
        )
    };
    let form_type = [("Content-Type", "application/x-www-form-urlencoded")];
    let token = request("POST", &endpoint, &form_type, form("my-secret").as_bytes()).await.expect("token");
    assert_eq!(token.status, 200, "{}", token.text());
    let token = token.json();
    assert_eq!((&token["token_type"], &token["expires_in"]), (&Value::from("Bearer"), &Value::from(3599)));
    let bearer = format!("Bearer {}", token["access_token"].as_str().expect("token"));
    let allowed = request("GET", &url, &[("Authorization", &bearer)], b"").await.expect("answer");
    assert_eq!(allowed.status, 200);

    let refused = request("POST", &endpoint, &form_type, form("wrong").as_bytes()).await.expect("answer");
    assert_eq!(refused.status, 401);
    let error = refused.json();
    assert_eq!(error["error"], "invalid_client");
    assert!(error["error_description"].as_str().is_some_and(|d| d.starts_with("AADSTS7000215")));
    let unknown = request("POST", &endpoint, &form_type, form("my-secret").replace("my-client", "other").as_bytes()).await.expect("answer");
    assert_eq!(unknown.status, 401);
    let grant = request("POST", &endpoint, &form_type, b"grant_type=password").await.expect("answer");
    assert_eq!((grant.status, grant.json()["error"].as_str()), (400, Some("unsupported_grant_type")));

    sim.inject_token_fault(Fault::throttle("oauth2", 1, 2));
    let throttled = request("POST", &endpoint, &form_type, form("my-secret").as_bytes()).await.expect("answer");
    assert_eq!((throttled.status, throttled.header("retry-after")), (429, Some("2")));
    assert_eq!(sim.token_requests().iter().map(|r| r.status).collect::<Vec<_>>(), [200, 401, 401, 400, 429]);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundreds_of_concurrent_label_requests() {
    let d = small();
    let sim = start(EnvironmentSpec::new("busy", d.clone())).await;
    let env = sim.env(0);
    let base = env.base_url();
    let ids: Vec<String> = d.label_ids().into_iter().take(400).collect();
    let mut tasks = tokio::task::JoinSet::new();
    for chunk in ids.chunks(8) {
        let (base, chunk, d) = (base.clone(), chunk.to_vec(), d.clone());
        tasks.spawn(async move {
            let mut connection = Connection::open(&base).await.expect("connects");
            for id in chunk {
                let path = format!("/Metadata/Labels(Id='{}',Language='en-US')", id.replace('\'', "''"));
                let r = connection.send("GET", &path, &[], b"").await.expect("answer");
                let expected = d.labels.get(&id, "en-US");
                assert_eq!(r.status, if expected.is_some() { 200 } else { 404 }, "{id}");
                if let Some(text) = expected {
                    assert_eq!(r.json()["Value"], text);
                }
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("client task");
    }
    assert_eq!(env.requests().len(), ids.len());
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn environments_are_separate_and_can_change() {
    let d = tiny();
    let (evolved, evolution) = d.evolve(5, 2);
    let sim = Simulator::start(LOOPBACK, vec![EnvironmentSpec::new("one", d.clone()), EnvironmentSpec::new("two", d.clone())])
        .await
        .expect("starts");
    let index = sim.add(EnvironmentSpec::new("three", Arc::new(evolved.clone()))).await.expect("added");
    assert_eq!(index, 2);
    let ports: BTreeSet<u16> = sim.envs().iter().map(|e| e.addr().port()).collect();
    assert_eq!(ports.len(), 3);
    assert_eq!(sim.env_named("two").map(|e| e.index()), Some(1));
    assert!(sim.env_named("four").is_none());

    let modules = |base: String| async move {
        post(&format!("{base}/data/SystemNotifications/Microsoft.Dynamics.DataEntities.GetInstalledModules")).await.json()["value"].clone()
    };
    let one = sim.env(0);
    assert_eq!(modules(one.base_url()).await, modules(sim.env(1).base_url()).await);
    assert_ne!(modules(one.base_url()).await, modules(sim.env(2).base_url()).await);

    one.set_dataset(Arc::new(evolved.clone()));
    let added = &evolution.added_public_entities[0];
    assert_eq!(get(&format!("{}/Metadata/PublicEntities('{added}')", one.base_url())).await.status, 200);
    assert_eq!(get(&format!("{}/Metadata/PublicEntities('{added}')", sim.env(1).base_url())).await.status, 404);
    assert_eq!(one.dataset().public_entities, evolved.public_entities);
    one.set_modules(Some(vec!["Name: X | Version: 1.0 | Module: X | Publisher: Y | DisplayName: X".to_string()]));
    assert_eq!(modules(one.base_url()).await, serde_json::json!(["Name: X | Version: 1.0 | Module: X | Publisher: Y | DisplayName: X"]));
    one.set_modules(None);
    assert_eq!(modules(one.base_url()).await, serde_json::to_value(&evolved.modules).expect("json"));
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fixed_ports_are_consecutive() {
    let probe = std::net::TcpListener::bind((LOOPBACK, 0)).expect("probe");
    let port = probe.local_addr().expect("addr").port();
    drop(probe);
    let specs = vec![EnvironmentSpec::new("a", tiny()), EnvironmentSpec::new("b", tiny())];
    let Ok(sim) = Simulator::start_at((LOOPBACK, port).into(), specs).await else {
        return; // another process took the ports in between: nothing to check
    };
    assert_eq!(sim.env(0).base_url(), format!("http://127.0.0.1:{port}"));
    assert_eq!(sim.env(1).addr().port(), port + 1);
    assert!(sim.token_endpoint("t").starts_with(&format!("http://127.0.0.1:{}/", port + 2)));
    let taken = Simulator::start_at((LOOPBACK, port).into(), vec![EnvironmentSpec::new("c", tiny())]).await;
    assert!(taken.err().is_some_and(|e| e.to_string().contains(&port.to_string())));
    sim.shutdown().await;
}

/// The full dataset served in pages and whole: the same items, and tens of megabytes. (How fast is
/// measured by the benchmarks, not here.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_public_entities_are_served_in_pages_and_whole() {
    let d = Arc::new(Dataset::generate(Scale::Full));
    let mut spec = EnvironmentSpec::new("full", d.clone());
    spec.page_size = Some(1000);
    let sim = start(spec).await;
    let base = sim.env(0).base_url();
    let (items, pages) = get_all(&format!("{base}/Metadata/PublicEntities")).await;
    assert_eq!((items.len(), pages), (d.public_entities.len(), d.public_entities.len().div_ceil(1000)));
    sim.env(0).set_page_size(None);
    let whole = get(&format!("{base}/Metadata/PublicEntities")).await;
    assert!(whole.body.len() > 20_000_000, "tens of megabytes");
    let whole: serde_json::Value = serde_json::from_slice(&whole.body).unwrap();
    let names = |items: &[serde_json::Value]| items.iter().map(|i| i["Name"].as_str().unwrap().to_owned()).collect::<Vec<_>>();
    assert_eq!(names(whole["value"].as_array().unwrap()), names(&items));
    sim.shutdown().await;
}
