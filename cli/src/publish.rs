//! `d365meta publish`: cached versions into the team's shared store.

use super::Context;
use super::output::{print_fields, print_json};
use super::progress::human_bytes;
use super::sync::to_json;
use d365meta::cache::{Cache, PublishOptions, PublishOutcome, PublishReport};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Versions to publish, by modules hash or a prefix of at least 8 characters (default: every
    /// version the cache holds complete).
    #[arg(value_name = "VERSION")]
    versions: Vec<String>,
}

pub async fn run(ctx: &Context, args: Args) -> anyhow::Result<()> {
    let runtime = ctx.runtime().await?;
    let mut cache = Cache::open(&runtime, ctx.sign_in_options(ctx.database())?).await?;
    let report = cache.publish(PublishOptions { versions: args.versions }).await?;
    if ctx.json {
        print_json(&to_json(&report));
    } else {
        print_report(&report);
    }
    Ok(())
}

fn print_report(r: &PublishReport) {
    let mut fields = vec![("Shared store", r.location.clone())];
    if r.versions.is_empty() {
        fields.push(("Versions", "none: the cache holds no complete version; sync an environment first".to_owned()));
    }
    for v in &r.versions {
        let coverage = if v.coverage.languages.is_empty() {
            "entities".to_owned()
        } else {
            format!("entities and labels {}", v.coverage.languages.join(", "))
        };
        let what = match v.outcome {
            PublishOutcome::Published => format!(
                "published ({coverage}): {} objects ({} uploaded), {} labels ({} uploaded), {} packs, {}",
                v.objects,
                v.objects_uploaded,
                v.labels,
                v.labels_uploaded,
                v.packs_uploaded,
                human_bytes(v.bytes_uploaded)
            ),
            PublishOutcome::AlreadyPublished => {
                format!("already published ({coverage}): {} objects, {} labels; nothing uploaded", v.objects, v.labels)
            }
        };
        fields.push(("Version", format!("{} {what}", v.modules_hash)));
    }
    fields.push(("Took", format!("{:.1} s", r.duration_ms as f64 / 1000.0)));
    print_fields(&fields);
}
