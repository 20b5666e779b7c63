//! A set of simulated environments described the way `d365meta simulate` takes it: a scale, module
//! lists for the first environments, how many environments, and how many of the last run a newer
//! version. One description, so that the command and the tests serve the same environments.

use crate::dataset::{Dataset, Scale};
use crate::server::EnvironmentSpec;
use std::sync::Arc;

#[derive(Clone, Debug)]
pub struct Setup {
    pub scale: Scale,
    /// `GetInstalledModules` lines of the first environments, in order.
    pub modules: Vec<Vec<String>>,
    /// Environments in all (at least one per module list, and at least one).
    pub environments: usize,
    /// How many of the last environments run a newer version with a few entities changed.
    pub newer: usize,
    pub page_size: Option<usize>,
}

impl Setup {
    /// The environments, named `env1`, `env2`, ...
    pub fn specs(&self) -> Vec<EnvironmentSpec> {
        let count = self.environments.max(self.modules.len()).max(1);
        let base = Arc::new(Dataset::generate(self.scale));
        let newer = (self.newer > 0).then(|| Arc::new(base.evolve(1, 5).0));
        (0..count)
            .map(|i| {
                let dataset = match (&newer, i + self.newer >= count) {
                    (Some(n), true) => n.clone(),
                    _ => base.clone(),
                };
                EnvironmentSpec {
                    name: format!("env{}", i + 1),
                    dataset,
                    modules: self.modules.get(i).cloned(),
                    page_size: self.page_size,
                    require_bearer: None,
                }
            })
            .collect()
    }
}
