"""Where the console's data is: the hot store, the tiers and the configuration, shared by every page.

Settings come from the command line after `--` (`streamlit run dashboard/app.py -- --output out --db-url URL`),
else from $NIGHTWATCH_DB_URL / $NIGHTWATCH_OUTPUT / $NIGHTWATCH_CONFIG_DIR, else the embedded defaults
(`out/nightwatch.db`, the shipped config/).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass

import streamlit as st

from config.environment import environment
from config.settings import NightwatchConfig, load_config
from store.configs import in_force
from store.hot import HotStore
from store.layout import Outputs


@dataclass(frozen=True)
class Settings:
    db_url: str
    archive_root: str
    config_dir: str | None
    warm_root: str = ""  # the warm tier: light curves of objects the hot store no longer keeps


def settings() -> Settings:
    env = environment()
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--output", default=env.output)
    parser.add_argument("--db-url", default=None)
    parser.add_argument("--config", default=str(env.config_dir) if env.config_dir else None)
    args, _ = parser.parse_known_args(sys.argv[1:])
    outputs = Outputs.under(args.output, args.db_url)  # --db-url, else $NIGHTWATCH_DB_URL, else OUTPUT/nightwatch.db
    return Settings(outputs.db_url, outputs.archive_root, args.config, outputs.warm_root)


@st.cache_resource(show_spinner=False)
def _store(url: str) -> HotStore:
    store = HotStore(url)
    store.ensure_schema()  # creates the console's tables in a store written by an older Nightwatch
    return store


@st.cache_resource(show_spinner=False)
def _config(config_dir: str | None) -> NightwatchConfig:
    return load_config(config_dir)


def store() -> HotStore:
    return _store(settings().db_url)


def files_config() -> NightwatchConfig:
    """The configuration folder's files alone (what the stored documents are laid over)."""
    return _config(settings().config_dir)


def config() -> NightwatchConfig:
    """The configuration in force: the stored documents (Configuration page, `nightwatch config`) over the files,
    read on each page run, so a change shows at once."""
    return in_force(files_config(), store())
