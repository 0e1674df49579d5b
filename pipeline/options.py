"""Command-line options of the pipeline, as Beam PipelineOptions (so they travel to workers)."""

from __future__ import annotations

from apache_beam.options.pipeline_options import PipelineOptions


class NightwatchOptions(PipelineOptions):
    @classmethod
    def _add_argparse_args(cls, parser) -> None:  # noqa: ANN001 - Beam's own signature
        parser.add_argument("--input", default=None, help="glob of packet files (ZTF/Rubin Avro, GCN JSON/XML)")
        parser.add_argument(
            "--simulate", type=int, default=0, help="generate this many packets instead of reading files"
        )
        parser.add_argument("--seed", type=int, default=0, help="simulator seed")
        parser.add_argument("--mix", default=None, help="simulator source mix, e.g. ztf=0.6,rubin=0.35,gcn=0.05")
        parser.add_argument("--bad_fraction", type=float, default=0.01, help="share of corrupt simulated packets")
        parser.add_argument(
            "--night",
            action="store_true",
            help="simulate a night: sources at their configured rates (event times and mix), a real night's classes",
        )
        parser.add_argument("--output", default="out", help="output root: warm/, archive/, dead_letters/ and the store")
        parser.add_argument("--db_url", default=None, help="hot store URL (default: sqlite file in --output)")
        parser.add_argument("--config_dir", default=None, help="folder of YAML configuration (default: shipped)")
        parser.add_argument("--run_id", default=None, help="identifier of this run (default: generated)")
        parser.add_argument(
            "--injected", action="store_true", help="flag the input packets as injected (the injection test)"
        )
        parser.add_argument("--replay_archive", default=None, help="replay the archive under this root instead")
        parser.add_argument("--replay_start", default=None, help="replay events from this time (ISO, UTC)")
        parser.add_argument("--replay_end", default=None, help="replay events before this time (ISO, UTC)")
        parser.add_argument("--replay_source", default=None, help="replay only this source")
