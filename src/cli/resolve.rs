//! Arguments -> plain configuration, once. Every setting that can come from several places is read
//! here, in one order: the flag, else its environment variable, else the profile of the
//! configuration file, else the default.

use super::RemoteArgs;
use crate::remote::{load_profile, prompt_password, read_token, Client, Credentials, Profile};
use anyhow::{bail, Result};
use std::path::PathBuf;
use std::time::Duration;

/// The first of a flag, its environment variable and the profile's value that is given (an empty
/// value counts as not given).
fn layered(flag: Option<String>, env: &str, profile: Option<String>) -> Option<String> {
    let given = |v: &String| !v.is_empty();
    flag.filter(given)
        .or_else(|| std::env::var(env).ok().filter(given))
        .or(profile.filter(given))
}

/// Which of TorchServe's APIs a remote command talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Api {
    /// The management API (`scancer store`).
    Management,
    /// The inference API (`scancer predict --remote`).
    Inference,
}

impl Api {
    fn url_env(self) -> &'static str {
        match self {
            Api::Management => "SCANCER_STORE_URL",
            Api::Inference => "SCANCER_API_URL",
        }
    }

    fn profile_url(self, profile: &Profile) -> Option<String> {
        match self {
            Api::Management => profile.store_url.clone(),
            Api::Inference => profile.api_url.clone(),
        }
    }

    /// The entry of TorchServe's key_file.json that holds this API's token.
    fn key(self) -> &'static str {
        match self {
            Api::Management => "management",
            Api::Inference => "inference",
        }
    }
}

/// TorchServe's management API on this machine, where `scancer store` goes by default.
pub(crate) const DEFAULT_STORE_URL: &str = "http://127.0.0.1:8081";

/// A client for `api`: its URL (`url` is the command's own flag), credentials and timeout.
pub(crate) fn client(args: &RemoteArgs, url: Option<String>, api: Api) -> Result<Client> {
    let profile = load_profile(args.profile.as_deref())?;
    let url = match (layered(url, api.url_env(), api.profile_url(&profile)), api) {
        (Some(url), _) => url,
        (None, Api::Management) => DEFAULT_STORE_URL.to_owned(),
        (None, Api::Inference) => bail!(
            "--remote: no URL (give --remote URL, or set SCANCER_API_URL or a profile's api_url)"
        ),
    };
    let credentials = credentials(args, &profile, api)?;
    Client::new(&url, credentials, Duration::from_secs(args.timeout))
}

/// A Bearer token, or the file that holds it.
enum Token {
    Given(String),
    File(PathBuf),
}

fn credentials(args: &RemoteArgs, profile: &Profile, api: Api) -> Result<Credentials> {
    let basic = match layered(args.user.clone(), "SCANCER_USER", profile.user.clone()) {
        None => None,
        Some(user) => Some(match user.split_once(':') {
            Some((name, password)) => (name.to_owned(), password.to_owned()),
            None => {
                let password = layered(None, "SCANCER_PASSWORD", profile.password.clone())
                    .map_or_else(|| prompt_password(&user), Ok)?;
                (user, password)
            }
        }),
    };
    // A token and a token file are one setting: whichever the first place that gives one gives.
    let flag = args
        .token
        .clone()
        .map(Token::Given)
        .or_else(|| args.token_file.clone().map(Token::File));
    let env = std::env::var("SCANCER_TOKEN")
        .ok()
        .filter(|t| !t.is_empty())
        .map(Token::Given);
    let from_profile = profile
        .token
        .clone()
        .map(Token::Given)
        .or_else(|| profile.token_file.clone().map(Token::File));
    let token = match flag.or(env).or(from_profile) {
        None => None,
        Some(Token::Given(token)) => Some(token),
        Some(Token::File(path)) => Some(read_token(&path, api.key())?),
    };
    Ok(Credentials::new(basic, token))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flag_comes_first_then_the_environment_then_the_profile() {
        // A variable no test sets: the environment is empty here.
        let var = "SCANCER_TEST_NEVER_SET";
        assert_eq!(
            layered(Some("flag".into()), var, Some("profile".into())),
            Some("flag".into())
        );
        assert_eq!(
            layered(None, var, Some("profile".into())),
            Some("profile".into())
        );
        assert_eq!(layered(Some(String::new()), var, Some(String::new())), None);
        // PATH is set in every test environment.
        assert_eq!(
            layered(None, "PATH", Some("profile".into())),
            std::env::var("PATH").ok()
        );
    }
}
