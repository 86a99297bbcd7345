"""`ocoserver deployment-rule …`: packages for every computer of a group."""

from __future__ import annotations

import argparse
from typing import Any

from ocoserver.cli.common import (
    add_command_group,
    add_json_option,
    add_leaf_command,
    parse_integer,
    print_fields,
    print_json,
    print_section,
    print_table,
)
from ocoserver.cli.deployments import job_record, job_table_row
from ocoserver.config import Config
from ocoserver.db import open_database
from ocoserver.store import deployment_rules

LIST_COLUMNS = [
    "id", "name", "enabled", "priority", "computer_group", "package_group", "jobs",
    "created",
]  # fmt: skip


def add_commands(commands: Any) -> None:
    rule_commands = add_command_group(
        commands, "deployment-rule",
        "give every computer of a computer group the packages of a package group",
    )  # fmt: skip
    _add_add_command(rule_commands)

    listing = add_leaf_command(
        rule_commands, "list", "list deployment rules", _run_list
    )
    add_json_option(listing)

    show = add_leaf_command(
        rule_commands, "show", "show a rule with its jobs", _run_show
    )
    show.add_argument("rule", metavar="RULE", help="rule id or name")
    add_json_option(show)

    for name, help_text, run in (
        ("enable", "enable a rule and create the jobs it is missing", _run_enable),
        ("disable", "stop handing out a rule's jobs", _run_disable),
        ("remove", "delete a rule with its jobs", _run_remove),
    ):
        parser = add_leaf_command(rule_commands, name, help_text, run)
        parser.add_argument("rule", metavar="RULE", help="rule id or name")


def _add_add_command(rule_commands: Any) -> None:
    add = add_leaf_command(
        rule_commands,
        "add",
        "create a rule, create its jobs and print its id",
        _run_add,
    )
    add.add_argument("--name", required=True, help="rule name, not all digits")
    add.add_argument(
        "--computer-group", required=True, metavar="GROUP",
        help="computer group id or name; its subgroups count too",
    )  # fmt: skip
    add.add_argument(
        "--package-group", required=True, metavar="GROUP",
        help="package group id or name; packages run in group order",
    )  # fmt: skip
    add.add_argument(
        "--priority", default="0", metavar="N",
        help="whole number that orders rules, highest first (default 0)",
    )  # fmt: skip
    add.add_argument(
        "--abort-on-failure", action="store_true",
        help="when a job fails, fail that computer's remaining jobs of the rule",
    )  # fmt: skip


async def _run_add(args: argparse.Namespace, config: Config) -> int:
    spec = deployment_rules.RuleSpec(
        name=args.name,
        computer_group=args.computer_group,
        package_group=args.package_group,
        priority=parse_integer(args.priority, "priority"),
        sequence_mode=1 if args.abort_on_failure else 0,
    )
    async with open_database(config.database_path) as database:
        rule_id = await deployment_rules.add(database, spec)
    print(rule_id)
    return 0


async def _run_list(args: argparse.Namespace, config: Config) -> int:
    async with open_database(config.database_path) as database:
        rows = await deployment_rules.list_all(database)
    if args.json:
        print_json(rows)
    else:
        print_table(rows, LIST_COLUMNS)
    return 0


async def _run_show(args: argparse.Namespace, config: Config) -> int:
    async with open_database(config.database_path) as database:
        rule, jobs = await deployment_rules.show(database, args.rule)
    if args.json:
        print_json({**rule, "jobs": [job_record(job) for job in jobs]})
        return 0
    print_fields(rule)
    rows = [_rule_job_row(job) for job in jobs]
    print_section("Jobs (agents see them as dynamic-<id>)", rows)
    return 0


def _rule_job_row(job: dict[str, Any]) -> dict[str, Any]:
    row = job_table_row({**job, "container_id": job.get("rule_id")})
    row.pop("container")
    return row


async def _run_enable(args: argparse.Namespace, config: Config) -> int:
    async with open_database(config.database_path) as database:
        rule = await deployment_rules.set_enabled(database, args.rule, True)
    print(f"enabled deployment rule {rule['name']} (id {rule['id']})")
    return 0


async def _run_disable(args: argparse.Namespace, config: Config) -> int:
    async with open_database(config.database_path) as database:
        rule = await deployment_rules.set_enabled(database, args.rule, False)
    print(f"disabled deployment rule {rule['name']} (id {rule['id']})")
    return 0


async def _run_remove(args: argparse.Namespace, config: Config) -> int:
    async with open_database(config.database_path) as database:
        rule = await deployment_rules.remove(database, args.rule)
    print(f"removed deployment rule {rule['name']} (id {rule['id']}) with its jobs")
    return 0
