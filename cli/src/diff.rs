//! `d365meta diff A B`: what changed in the metadata between two environments or cached versions.

use super::Context;
use super::output::print_json;
use super::read::parse_kinds;
use super::sync::to_json;
use d365meta::cache::{DiffOptions, DiffSide};
use d365meta::diff_text;

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Format {
    Text,
    Markdown,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Only {
    /// What breaks an integration: removals, key and type changes, properties made mandatory or not editable.
    Breaking,
}

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The old side: an environment (base URL or profile name), or a cached version's modules hash (8 or more characters).
    a: String,
    /// The new side, named the same way.
    b: String,
    /// Only these kinds: data-entity, public-entity, enumeration, action, property (comma-separated).
    #[arg(long = "kind", value_delimiter = ',', value_name = "KINDS")]
    kinds: Vec<String>,
    /// Only this entity (public entity, entity set or data entity name) and its counterpart.
    #[arg(long, value_name = "NAME")]
    entity: Option<String>,
    /// Only what breaks an integration.
    #[arg(long, value_enum)]
    only: Option<Only>,
    /// Also label texts that changed, in these languages (default en-US); both sides must cover them.
    #[arg(long, value_name = "LANGS", num_args = 0..=1, default_missing_value = "en-US", value_delimiter = ',')]
    labels: Option<Vec<String>>,
    /// How to print the differences without --json: text, or markdown for a pull request or a ticket.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

impl Args {
    pub(crate) fn named(&mut self) -> Vec<super::Named<'_>> {
        vec![super::Named::Side(&mut self.a), super::Named::Side(&mut self.b)]
    }
}

pub async fn run(ctx: &Context, args: Args) -> anyhow::Result<()> {
    for arg in [&args.a, &args.b] {
        if arg.contains("://") {
            super::check_base_url(arg)?;
        }
    }
    let options = DiffOptions {
        kinds: parse_kinds(&args.kinds)?,
        entity: args.entity.clone(),
        only_breaking: args.only.is_some(),
        label_languages: args.labels.clone().unwrap_or_default(),
    };
    let (_runtime, mut cache) = ctx.open_read().await?;
    let diff = cache.diff(DiffSide::named(args.a.as_str()), DiffSide::named(args.b.as_str()), options).await?;
    if ctx.json {
        print_json(&to_json(&diff));
    } else {
        let names = (args.a.as_str(), args.b.as_str());
        print!(
            "{}",
            match args.format {
                Format::Text => diff_text::text(&diff, names),
                Format::Markdown => diff_text::markdown(&diff, names),
            }
        );
    }
    Ok(())
}
