//! `connito wallet new|show`, and the `--wallet.*` flags the daemons share.

use std::io::Read as _;
use std::path::PathBuf;

use anyhow::Context as _;
use connito::submission::Hotkey;
use connito::wallet::{self, DEFAULT_WALLET_PATH, WalletSpec};

/// Where a hotkey lives, as the bittensor tools name it.
#[derive(clap::Args, Debug, Clone)]
pub struct WalletArgs {
    /// Wallet name (a directory under --wallet.path).
    #[arg(
        long = "wallet.name",
        env = "CONNITO_WALLET_NAME",
        default_value = "default"
    )]
    pub name: String,
    /// Hotkey name (a file under <wallet>/hotkeys/).
    #[arg(
        long = "wallet.hotkey",
        env = "CONNITO_WALLET_HOTKEY",
        default_value = "default"
    )]
    pub hotkey: String,
    /// Directory of wallets.
    #[arg(long = "wallet.path", env = "CONNITO_WALLET_PATH", default_value = DEFAULT_WALLET_PATH)]
    pub path: String,
}

impl WalletArgs {
    pub fn spec(&self) -> WalletSpec {
        WalletSpec {
            path: self.path.clone(),
            name: self.name.clone(),
            hotkey: self.hotkey.clone(),
        }
    }

    pub fn hotkey_file(&self) -> anyhow::Result<PathBuf> {
        let home = std::env::var_os("HOME").map(PathBuf::from);
        Ok(self.spec().hotkey_file(home.as_deref())?)
    }

    /// Reads the hotkey; the error names the file and what is wrong with it.
    pub fn load(&self) -> anyhow::Result<Hotkey> {
        let path = self.hotkey_file()?;
        Ok(wallet::read_hotkey(&path)?)
    }
}

#[derive(clap::Subcommand)]
pub enum WalletCmd {
    /// Make a new hotkey (BIP-39 mnemonic, sr25519, as the bittensor tools do) and write it to
    /// <wallet.path>/<wallet.name>/hotkeys/<wallet.hotkey> (mode 0600). Prints the address; the
    /// mnemonic only with --show-mnemonic.
    New {
        #[command(flatten)]
        wallet: WalletArgs,
        /// Words in the mnemonic: 12 or 24.
        #[arg(long, default_value_t = 12)]
        words: usize,
        /// Replace an existing hotkey file.
        #[arg(long)]
        overwrite: bool,
        /// Print the mnemonic on stderr (write it down: it is the only backup).
        #[arg(long)]
        show_mnemonic: bool,
    },
    /// Print a hotkey's address and public key (never its secret).
    Show {
        #[command(flatten)]
        wallet: WalletArgs,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

fn os_entropy(n: usize) -> anyhow::Result<Vec<u8>> {
    let mut buf = vec![0u8; n];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .context("reading /dev/urandom")?;
    Ok(buf)
}

pub fn run(cmd: WalletCmd) -> anyhow::Result<()> {
    match cmd {
        WalletCmd::New {
            wallet: w,
            words,
            overwrite,
            show_mnemonic,
        } => {
            anyhow::ensure!(
                words == 12 || words == 24,
                "--words must be 12 or 24, not {words}"
            );
            let path = w.hotkey_file()?;
            let key = wallet::new_key(&os_entropy(words / 3 * 4)?)?;
            wallet::write_hotkey(&path, &key.keyfile, overwrite)?;
            eprintln!("wrote {}", path.display());
            if show_mnemonic {
                eprintln!("mnemonic: {}", key.phrase);
            }
            println!("{}", key.hotkey.address());
        }
        WalletCmd::Show { wallet: w, json } => {
            let path = w.hotkey_file()?;
            let key = wallet::read_hotkey(&path)?;
            if json {
                let v = serde_json::json!({
                    "path": path,
                    "ss58_address": key.address(),
                    "public_key": format!("0x{}", hex::encode(key.public())),
                });
                println!("{v}");
            } else {
                println!("{}  {}", key.address(), path.display());
            }
        }
    }
    Ok(())
}
