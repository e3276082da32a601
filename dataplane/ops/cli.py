"""`python -m dataplane <command>`: every operation of the tool, one command tree.

Exit status: 0 on success (no FAIL row), 1 when a step fails, 2 for bad input (configuration,
an unknown or malformed customer name, an unknown profile), always with one line saying which.
Each command's module is imported only when it runs, so the CLI starts light.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import NoReturn

from dataplane.fleet_location import FleetLocation, fleet_location


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        status = args.run(args)
        sys.stdout.flush()
        return status
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader closed stdout (`| head`): stop quietly, as a process ended by SIGPIPE would.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except Exception as e:  # ours to mend, not the engineer's to read: one line, and the traceback in a file
        print(f"python -m dataplane {args.command}: unexpected error: {type(e).__name__}: {e} (a bug: please report "
              f"it with {_kept_traceback(args.command)})", file=sys.stderr)
        return 1


def _kept_traceback(command: str) -> str:
    """The current exception's traceback, written to a new file; its path."""
    import tempfile
    import traceback

    descriptor, path = tempfile.mkstemp(prefix=f"dataplane-{command}-", suffix=".traceback")
    with os.fdopen(descriptor, "w") as file:
        traceback.print_exc(file=file)
    return path


EVERYDAY = ("activate", "preflight", "deploy", "plan", "verify", "list", "drift", "destroy", "adopt", "unlock",
            "rollout", "review", "bootstrap", "sandbox")
"""The engineer's commands, listed first by `--help`; every other command is pipeline plumbing or set-up."""


def parser() -> argparse.ArgumentParser:
    """The command tree (the workflow tests check every `python -m dataplane` step against it); every location's
    default is the fleet's (`dataplane/fleet_location.py`)."""
    where = fleet_location()
    parser = argparse.ArgumentParser(prog="python -m dataplane", usage="%(prog)s [-h] COMMAND ...", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", help=argparse.SUPPRESS,
                                     prog=parser.prog)
    known = commands.add_parser("customer", help="exit 0 when NAME is a customer of the fleet, else say so (exit 2)")
    known.add_argument("customer", metavar="NAME")
    known.set_defaults(run=_known)
    _workspace_parser(commands, where, "adopt", _adopt,
                      "show what a deploy would adopt: live resources the state lacks")
    deploy = _workspace_parser(commands, where, "deploy", _deploy, "adopt what is provably ours, then terraform apply")
    deploy.add_argument("--outputs-dir", type=Path, default=where.outputs,
                        help="where <customer>.json with the stack outputs is written (%(default)s)")
    destroy = commands.add_parser("destroy", help="destroy a customer's stack; with --base, one whose file is gone")
    destroy.add_argument("customer", help="customer name")
    destroy.add_argument("--outdir", type=Path, default=where.synth_out, help="synth output dir (%(default)s)")
    destroy.add_argument("--base", metavar="REF",
                         help="git ref whose fleet still has the customer: its stack is synthesized and destroyed")
    destroy.add_argument("--yes", action="store_true",
                         help="destroy without asking (needed when not on a terminal, where the name is typed)")
    destroy.add_argument("--records-dir", type=Path, default=where.records,
                         help="the activation records: <customer>.json and .md list the audit logs kept, then say "
                              "destroyed (%(default)s)")
    destroy.add_argument("--outputs-dir", type=Path, default=where.outputs,
                         help="where the deploy wrote <customer>.json with the stack outputs, removed once destroyed "
                              "(%(default)s)")
    destroy.set_defaults(run=_destroy)
    plan = commands.add_parser("plan-stacks",
                               help="terraform plans of many stacks in parallel, as JSON for review --plans")
    plan.add_argument("customers", nargs="*", metavar="CUSTOMER", help="stacks to plan (default: all, or affected)")
    plan.add_argument("--outdir", type=Path, default=where.synth_out, help="synth output to plan (%(default)s)")
    plan.add_argument("--affected-from", type=Path, metavar="BASE_OUT",
                      help="base synth output: plan stacks added or changed since it, and destroys of removed ones")
    plan.add_argument("--batch", type=_batch, metavar="i/n", help="plan only batch i (0-based) of n of the selection")
    plan.add_argument("--jobs", type=_positive, default=os.cpu_count() or 1, help="stacks planned at once (CPUs)")
    plan.add_argument("--out", type=Path, default=where.plans, help="where plans are written (%(default)s)")
    plan.add_argument("--ok-on-changes", action="store_true", help="exit 0, not 2, when stacks have changes")
    plan.set_defaults(run=_plan_stacks)
    _rollout_parser(commands, where)
    synth_ref = commands.add_parser("synth-ref", help="synthesize a git ref as committed, in a temporary worktree")
    synth_ref.add_argument("ref", help="git ref (branch, tag, commit)")
    synth_ref.add_argument("--outdir", type=Path, required=True, help="where to synthesize (a cdktf.out layout)")
    synth_ref.set_defaults(run=_synth_ref)
    drift = commands.add_parser("drift", help="what changed outside Terraform in deployed stacks (refresh-only plans)")
    drift.add_argument("customers", nargs="*", metavar="CUSTOMER", help="stacks to check (default: all)")
    drift.add_argument("--outdir", type=Path, default=where.synth_out, help="synth output to check (%(default)s)")
    drift.add_argument("--batch", type=_batch, metavar="i/n", help="check only batch i (0-based) of n of the stacks")
    drift.add_argument("--merge", type=Path, metavar="DIR",
                       help="check nothing: the one report of the shard reports (--batch, --format json) in DIR")
    drift.add_argument("--jobs", type=_positive, default=os.cpu_count() or 1, help="stacks planned at once (CPUs)")
    drift.add_argument("--format", choices=("markdown", "json"), default="markdown")
    drift.add_argument("--out", type=Path, metavar="FILE", help="write the report to FILE (default: stdout)")
    drift.set_defaults(run=_drift)
    issue = commands.add_parser("issue", help="open or update the one open issue with this title (the drift report)")
    issue.add_argument("--title", required=True, help="the issue's title; its hidden marker is made from it")
    issue.add_argument("--body-file", type=Path, required=True, help="the issue's body (Markdown)")
    issue.add_argument("--close", action="store_true", help="update the open issue and close it; open none")
    issue.add_argument("--repo", help="OWNER/NAME (default: $GITHUB_REPOSITORY)")
    issue.add_argument("--api-url", help="GitHub REST API (default: $GITHUB_API_URL, else https://api.github.com)")
    issue.add_argument("--author", help="the login the token writes as; only its marked issue is updated "
                                        "(default: github-actions[bot])")
    issue.set_defaults(run=_issue)
    sandbox = commands.add_parser("sandbox", help="an offline AWS (moto) with what each customer already has, "
                                                  "until Ctrl-C; prints how to activate a customer in it")
    sandbox.add_argument("--port", type=int, default=4566, help="port on 127.0.0.1 (4566; 0: any free port)")
    sandbox.add_argument("--customers-dir", type=Path, metavar="DIR",
                         help="the fleet (default: the project's customers, or $DATAPLANE_CUSTOMERS_DIR)")
    sandbox.set_defaults(run=_sandbox)
    activate = _workspace_parser(commands, where, "activate", _activate,
                                 "preflight, deploy and verify a customer, then write its activation record")
    activate.add_argument("--outputs-dir", type=Path, default=where.outputs,
                          help="where the deploy writes <customer>.json with the stack outputs (%(default)s)")
    activate.add_argument("--records-dir", type=Path, default=where.records,
                          help="where the record <customer>.json and <customer>.md is written (%(default)s)")
    activate.add_argument("--control-plane-profile", metavar="PROFILE",
                          help="AWS profile of the control plane, for verify (default: the deployer's credentials)")
    _workspace_parser(commands, where, "plan", _plan, "terraform plan of one customer as synthesized now (make plan)")
    _workspace_parser(commands, where, "unlock", _unlock,
                      "show a killed run's S3 state lock; release it once confirmed")
    _checks_parser(commands, "preflight", _preflight, "check the account is ready, with the deployer's credentials")
    verify = _checks_parser(commands, "verify", _verify, "check the deployed activation, as the control plane would")
    verify.add_argument("--inspect-profile",
                        help="profile with read access to the customer's account (default: the assumed role)")
    verify.add_argument("--records-dir", type=Path, default=where.records,
                        help="the activation records: a customer whose record says destroyed is not checked "
                             "(%(default)s)")
    verify.add_argument("--outdir", type=Path, default=where.synth_out,
                        help="synth output dir (%(default)s); local state sits beside it: a destroyed customer's "
                             "holds no resources")
    listing = commands.add_parser("list", help="every customer, what its state says is deployed, CIDRs that overlap")
    _format_option(listing)
    listing.add_argument("--outdir", type=Path, default=where.synth_out,
                         help="synth output dir (%(default)s); local state sits beside it")
    listing.set_defaults(run=_list)
    review = commands.add_parser("review", help="the PR review: configuration diff of two cdktf.out dirs, and plans")
    review.add_argument("--base", type=Path, help="synthesized output of the base (cdktf.out layout)")
    review.add_argument("--head", type=Path, help="synthesized output of the head (cdktf.out layout)")
    review.add_argument("--plans", type=Path, metavar="DIR",
                        help="<customer>.plan.json files (terraform show -json): the plans' figures for those stacks")
    review.add_argument("--format", choices=("markdown", "json"), default="markdown")
    review.add_argument("--affected", action="store_true", help="print only the added or changed stack names")
    review.add_argument("--max-chars", default="65000", metavar="N",
                        help="split the Markdown into parts of at most N characters (at least 1000; 65000)")
    review.add_argument("--parts-dir", type=Path, metavar="DIR",
                        help="write the parts to DIR/part-001.md, ... and print only their paths")
    review.set_defaults(run=_review)
    blast = commands.add_parser("blast-radius", help="exit 1 when a pull request changes the roles of more customers "
                                                     "than rollout.maxCustomersWithoutLabel without the fleet-change "
                                                     "label ($GITHUB_EVENT_PATH's)")
    blast.add_argument("--base", type=Path, required=True, help="synthesized output of the base (cdktf.out layout)")
    blast.add_argument("--head", type=Path, required=True, help="synthesized output of the head (cdktf.out layout)")
    blast.set_defaults(run=_blast_radius)
    gate = commands.add_parser("gate", help="the security gate: checkov over every synthesized stack")
    gate.add_argument("outdir", type=Path, nargs="?", default=where.synth_out, help="synth output (%(default)s)")
    gate.set_defaults(run=_gate)
    matrix = commands.add_parser("matrix", help="GitHub Actions job matrix: plan or drift batches, customers to "
                                                "apply/destroy (one a job, in batches beyond --max-jobs)")
    matrix.add_argument("kind", choices=("plan", "apply", "destroy", "drift"))
    matrix.add_argument("--base", type=Path, help="synthesized output of the base (cdktf.out layout; not for drift)")
    matrix.add_argument("--head", type=Path, required=True, help="synthesized output of the head (cdktf.out layout)")
    matrix.add_argument("--per-job", type=int, default=20, help="stacks per plan or drift job (20)")
    matrix.add_argument("--max-jobs", type=int, default=256, help="at most this many jobs, 1-256 (256: GitHub's limit)")
    matrix.add_argument("--github-output", action="store_true", help="also append matrix= and count= (apply: and "
                        "approve-each-wave=, rollout.approveEachWave) to $GITHUB_OUTPUT")
    matrix.set_defaults(run=_matrix)
    comment = commands.add_parser("comment", help="post the review parts as sticky comments on the pull request")
    comment.add_argument("--parts-dir", type=Path, required=True, help="the review's parts: part-001.md, ...")
    comment.add_argument("--repo", help="OWNER/NAME (default: $GITHUB_REPOSITORY)")
    comment.add_argument("--pr", type=int, help="pull request number (default: the event's, $GITHUB_EVENT_PATH)")
    comment.add_argument("--api-url", help="GitHub REST API (default: $GITHUB_API_URL, else https://api.github.com)")
    comment.add_argument("--author", help="the login the token writes as; only its marked comments are edited "
                                          "(default: github-actions[bot])")
    comment.set_defaults(run=_comment)
    atlantis = commands.add_parser("atlantis", help="print atlantis.yaml: one Atlantis project per synthesized stack")
    atlantis.add_argument("--outdir", type=Path, default=where.synth_out, help="synth output (%(default)s)")
    atlantis.add_argument("--repos-yaml", metavar="OWNER/NAME",
                          help="print instead the Atlantis server's repos.yaml for this GitHub repository")
    atlantis.set_defaults(run=_atlantis)
    ci_roles = commands.add_parser("ci-roles", help="the pipeline's IAM roles (GitHub OIDC trust, sub pinned), each "
                                                    "customer account's plan role and its bootstrap's deploy role, as "
                                                    "JSON")
    ci_roles.add_argument("--repo", required=True, metavar="OWNER/NAME", help="the GitHub repository of the pipeline")
    ci_roles.add_argument("--ci-account", required=True, metavar="ID", help="the AWS account of the two CI roles")
    ci_roles.add_argument("--branch", default="main", help="the branch the drift schedule runs on (main)")
    ci_roles.set_defaults(run=_ci_roles)
    bootstrap = commands.add_parser("bootstrap", help="the customer's first step: a CloudFormation template of the "
                                                      "deploy role, least privilege from the stack, and its page")
    bootstrap.add_argument("customer", help="customer name (customers/<name>.toml)")
    bootstrap.add_argument("--out", type=Path, default=where.bootstrap,
                           help="where <customer>.cfn.json and <customer>.md are written (%(default)s)")
    bootstrap.set_defaults(run=_bootstrap)
    terraformrc = commands.add_parser("terraformrc", help="write the project's terraform CLI config if it changed")
    terraformrc.set_defaults(run=_terraformrc)
    cdktf = commands.add_parser("cdktf", help="the pinned cdktf CLI, with the project's environment")
    cdktf.add_argument("arguments", nargs=argparse.REMAINDER, help="its arguments (plan <customer> ...)")
    cdktf.set_defaults(run=_cdktf)
    parser.epilog = _grouped(commands)
    return parser


def _grouped(commands: argparse._SubParsersAction) -> str:
    """The commands with their one line each, everyday ones apart from the pipeline's plumbing."""
    helps = {action.dest: action.help for action in commands._choices_actions}
    width = max(map(len, helps)) + 2

    def group(title: str, names) -> str:
        return f"{title}:\n" + "".join(f"  {name:<{width}}{helps[name]}\n" for name in names)
    return (group("everyday commands", EVERYDAY) + "\n"
            + group("pipeline plumbing and set-up", sorted(set(helps) - set(EVERYDAY))))


def _gate(args: argparse.Namespace) -> int:
    from dataplane.ops.pipeline import gate

    return gate.run(args.outdir)


def _atlantis(args: argparse.Namespace) -> int:
    settings = _project()[0]
    from dataplane.ops.pipeline import atlantis, ci_roles
    from dataplane.project import PROJECT_ROOT

    if args.repos_yaml is not None:
        if not ci_roles.ARGUMENTS["--repo"][0].fullmatch(args.repos_yaml):
            _usage_error(f"atlantis: --repos-yaml {args.repos_yaml!r}: not {ci_roles.ARGUMENTS['--repo'][1]}")
        sys.stdout.write(atlantis.render(atlantis.server_config(args.repos_yaml)))
        return 0
    try:
        config = atlantis.repo_config(args.outdir, PROJECT_ROOT / settings.customers_dir, PROJECT_ROOT)
    except atlantis.AtlantisError as e:
        _usage_error(f"atlantis: {e}")
    sys.stdout.write(atlantis.render(config))
    return 0


def _ci_roles(args: argparse.Namespace) -> int:
    settings, customers = _project()
    from dataplane.ops.fleet.deploy import SynthError
    from dataplane.ops.pipeline import ci_roles

    try:
        sys.stdout.write(ci_roles.render(ci_roles.document(settings, customers, args.repo, args.ci_account,
                                                           args.branch)))
    except ci_roles.CiRolesError as e:
        _usage_error(f"ci-roles: {e}")
    except SynthError as e:
        print(f"ci-roles: cannot synthesize the fleet's stacks for their bootstraps: {e}", file=sys.stderr)
        return 1
    return 0


def _bootstrap(args: argparse.Namespace) -> int:
    settings, customer = _customer(args.customer)
    from dataplane.ops.account import bootstrap
    from dataplane.ops.fleet.deploy import SynthError

    if args.out.exists() and not args.out.is_dir():
        _usage_error(f"bootstrap: --out {str(args.out)!r}: not a directory")
    try:
        stack = bootstrap.synthesized(customer)
        written = bootstrap.write(stack, settings, customer, args.out)
    except bootstrap.BootstrapError as e:
        _usage_error(f"bootstrap {customer.name}: {e}")
    except OSError as e:
        _usage_error(f"bootstrap: --out {str(args.out)!r}: {e.strerror or e}")
    except SynthError as e:
        print(f"bootstrap {customer.name}: {e}", file=sys.stderr)
        return 1
    print(f"wrote {' and '.join(map(str, written))}: send both to {customer.name}'s security team")
    return 0


def _matrix(args: argparse.Namespace) -> int:
    from dataplane.ops.pipeline import matrix

    if (args.base is None) != (args.kind == "drift"):
        _usage_error(f"matrix {args.kind}: " + ("--base is required" if args.base is None else "no --base: every "
                                                "stack of --head is checked"))
    return matrix.run(args.kind, args.base, args.head, args.per_job, args.max_jobs, args.github_output)


def _comment(args: argparse.Namespace) -> int:
    from dataplane.ops.pipeline import comment

    return comment.run(args.parts_dir, args.repo, args.pr, args.api_url, args.author)


def _terraformrc(args: argparse.Namespace) -> int:
    from dataplane.runtime import toolchain

    try:
        source, changed = toolchain.write_cli_config()
    except toolchain.MirrorError as e:
        _usage_error(str(e))
    if changed:
        print(f"wrote {toolchain.TERRAFORM_CLI_CONFIG.name}: aws provider from {source}")
    return 0


def _cdktf(args: argparse.Namespace) -> int:
    from dataplane.project import PROJECT_ROOT
    from dataplane.runtime.toolchain import tool_environment

    return subprocess.run(["cdktf", *args.arguments], cwd=PROJECT_ROOT, env=tool_environment()).returncode


def _review(args: argparse.Namespace) -> int:
    from dataplane.ops.pipeline import review

    if (args.base is None) != (args.head is None):
        _usage_error("review: --base and --head go together")
    if args.base is None and args.plans is None:
        _usage_error("review: nothing to review: give --base and --head, or --plans, or all three")
    try:
        max_chars = int(args.max_chars)
    except ValueError:
        max_chars = 0
    if max_chars < review.MIN_CHARS:
        _usage_error(f"review: --max-chars must be a whole number, at least {review.MIN_CHARS}; not {args.max_chars!r}")
    if args.parts_dir is not None and (args.format == "json" or args.affected):
        _usage_error("review: --parts-dir writes the Markdown parts: not with --format json or --affected")
    try:
        report = review.review(args.base, args.head, args.plans, _settings().rollout.max_customers_without_label)
        if args.affected or args.format == "json":
            sys.stdout.write(review.render(report, args.format, args.affected))
        elif args.parts_dir is None:
            sys.stdout.write(review.join_parts(review.split(report, max_chars)))
        else:
            for path in review.write_parts(review.split(report, max_chars), args.parts_dir):
                print(path)
    except review.ReviewError as e:
        print(f"review: {e}", file=sys.stderr)
        return 2
    return 0


def _blast_radius(args: argparse.Namespace) -> int:
    from dataplane.ops.pipeline import comment, review

    limit = _settings().rollout.max_customers_without_label
    try:
        report = review.review(args.base, args.head, label_limit=limit)
        labels = comment.event_labels()
    except (review.ReviewError, comment.InputError) as e:
        _usage_error(f"blast-radius: {e}")
    if refusal := review.fleet_change_refusal(report, labels):
        print(f"blast-radius: {refusal}", file=sys.stderr)
        return 1
    print(f"blast-radius: the roles of {len(review.role_changes(report))} customer(s) change (more than {limit} "
          f"need the {review.FLEET_CHANGE_LABEL} label)")
    return 0


def _workspace_parser(commands: argparse._SubParsersAction, where: FleetLocation, name: str, run,
                      help: str) -> argparse.ArgumentParser:
    parser = commands.add_parser(name, help=help)
    parser.add_argument("customer", help="customer name (customers/<name>.toml)")
    parser.add_argument("--outdir", type=Path, default=where.synth_out,
                        help="synth output dir (%(default)s); the private workspace and local state sit beside it")
    parser.set_defaults(run=run)
    return parser


def _checks_parser(commands: argparse._SubParsersAction, name: str, run, help: str) -> argparse.ArgumentParser:
    parser = commands.add_parser(name, help=help)
    parser.add_argument("customer", help="customer name (customers/<name>.toml)")
    _format_option(parser)
    parser.add_argument("--profile", help="AWS profile (default: the standard credential chain)")
    parser.add_argument("--region", help="region for STS and IAM calls (default: the profile's, else us-east-1)")
    parser.set_defaults(run=run)
    return parser


def _preflight(args: argparse.Namespace) -> int:
    settings, customer = _customer(args.customer)
    from dataplane.ops.account.preflight import preflight

    deployer = _deployer("preflight", settings, customer.name, customer.account_id, args.profile, args.region)
    return _print(preflight(customer, settings, deployer.session), args.format)


def _verify(args: argparse.Namespace) -> int:
    settings, customer = _customer(args.customer)
    from dataplane.ops.account.verify import verify
    from dataplane.ops.fleet.activate import destroyed_record

    if gone := destroyed_record(customer, settings, args.records_dir, args.outdir):
        record, destroyed = gone
        print(json.dumps({"command": "verify", "customer": customer.name, "ok": True, "checks": [],
                          "destroyed": {**destroyed, "record": str(record)}}, indent=2) if args.format == "json" else
              f"{customer.name}: destroyed on {destroyed['at']} (activation record {record}); nothing to verify")
        return 0
    inspect = _session(args.inspect_profile, args.region) if args.inspect_profile else None
    if inspect is None and settings.deploy_role_name:  # the account is read as the deployer (the standard chain's)
        inspect = _deployer("verify", settings, customer.name, customer.account_id, None, args.region).session
    return _print(verify(customer, settings, _session(args.profile, args.region), inspect), args.format)


def _known(args: argparse.Namespace) -> int:
    _customer(args.customer)
    return 0


def _adopt(args: argparse.Namespace) -> int:
    settings, customer = _customer(args.customer)
    _act_as_deployer("adopt", settings, customer.name, customer.account_id)
    from dataplane.ops.fleet.adopt import AdoptError
    from dataplane.ops.fleet.deploy import SynthError, planned_imports

    try:
        imports = planned_imports(customer, args.outdir)
    except (AdoptError, SynthError) as e:
        print(f"adopt {customer.name}: {e}", file=sys.stderr)
        return 1
    for block in imports:
        print(f"would adopt {block['to']} = {block['id']}")
    print(f"{len(imports)} resource(s) to adopt; everything else is in the state or not yet created")
    return 0


def _plan(args: argparse.Namespace) -> int:
    customer = _customer(args.customer)[1]
    from dataplane.ops.fleet.deploy import SynthError, plan_customer

    try:
        return plan_customer(customer, args.outdir)
    except SynthError as e:
        print(f"plan {customer.name}: {e}", file=sys.stderr)
        return 1


def _deploy(args: argparse.Namespace) -> int:
    settings, customer = _customer(args.customer)
    _act_as_deployer("deploy", settings, customer.name, customer.account_id)
    from dataplane.ops.fleet.adopt import AdoptError
    from dataplane.ops.fleet.deploy import SynthError, deploy

    try:
        return deploy(customer, args.outdir, args.outputs_dir)
    except (AdoptError, SynthError) as e:
        print(f"deploy {customer.name}: {e}", file=sys.stderr)
        return 1


def _batch(value: str) -> tuple[int, int]:
    from dataplane.runtime.shards import parse

    try:
        return parse(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r}: expected i/n with 0 <= i < n") from None


def _positive(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"{value!r}: expected a whole number of at least 1")
    return int(value)


def _plan_stacks(args: argparse.Namespace) -> int:
    if args.customers and args.affected_from:
        _usage_error("plan: name customers or give --affected-from, not both")
    settings = _project()[0]
    from dataplane.ops.fleet import plan

    try:
        targets = plan.select(args.outdir, args.customers, args.affected_from, args.batch)
        plan.make_out(args.out)
    except plan.PlanInputError as e:
        _usage_error(f"plan: {e}")
    started = time.monotonic()
    results = plan.plan_all(targets, args.outdir, args.out, settings, args.jobs,
                            lambda result: print(result.line(), flush=True))
    if args.batch is None:
        plan.keep_only(args.out, [t.name for t in targets])
    counts = {result: sum(r.result == result for r in results) for result in ("changes", "no changes", "error")}
    print(f"planned {len(results)} stack(s) in {time.monotonic() - started:.1f} s: {counts['changes']} with changes, "
          f"{counts['no changes']} without, {counts['error']} failed; plans in {args.out}")
    return plan.exit_status(results, args.ok_on_changes)


def _rollout_parser(commands: argparse._SubParsersAction, where: FleetLocation) -> None:
    rollout = commands.add_parser("rollout", help="plan every stack, then apply the changed ones canary first and in "
                                                  "waves, verified, halted by a failure; resumable")
    rollout.add_argument("customers", nargs="*", metavar="CUSTOMER", help="stacks to roll out (default: all)")
    rollout.add_argument("--outdir", type=Path, default=where.synth_out, help="synth output to roll out (%(default)s)")
    rollout.add_argument("--jobs", type=_positive, default=os.cpu_count() or 1,
                         help="stacks planned or applied at once, bounded by memory (CPUs)")
    rollout.add_argument("--records-dir", type=Path, default=where.rollouts,
                         help="where the records <id>.json and <id>.md and the logs <id>/ go (%(default)s)")
    rollout.add_argument("--outputs-dir", type=Path, default=where.outputs,
                         help="where each applied stack's <customer>.json with its outputs is written (%(default)s)")
    rollout.add_argument("--dry-run", action="store_true", help="plan and print the waves; apply nothing")
    rollout.add_argument("--format", choices=("markdown", "json"), default="markdown", help="--dry-run's (markdown)")
    rollout.add_argument("--resume", action="store_true",
                         help="continue the latest unfinished rollout of this commit and settings")
    rollout.add_argument("--supersede", action="store_true",
                         help="mark an unfinished rollout superseded and start anew")
    rollout.add_argument("--wave", type=_positive, metavar="N", help="stop after wave N (continue with --resume)")
    rollout.add_argument("--github-summary", action="store_true",
                         help="also append the record's Markdown to $GITHUB_STEP_SUMMARY (the job summary)")
    rollout.set_defaults(run=_rollout)


def _rollout(args: argparse.Namespace) -> int:
    import psutil

    from dataplane.config.settings import UnknownCustomer, customer_named
    from dataplane.ops.fleet import plan, rollout
    from dataplane.project import GITHUB_STEP_SUMMARY_ENV

    if args.resume and (args.customers or args.supersede or args.dry_run):
        _usage_error("rollout: --resume continues the recorded rollout: no CUSTOMER, --supersede or --dry-run")
    if args.github_summary and not os.environ.get(GITHUB_STEP_SUMMARY_ENV):
        _usage_error(f"rollout: --github-summary: {GITHUB_STEP_SUMMARY_ENV} is not set (GitHub Actions sets it)")
    settings, customers = _project()
    try:
        names = tuple(customer_named(customers, name).name for name in args.customers)
    except UnknownCustomer as e:
        _usage_error(str(e))
    jobs = rollout.job_limit(args.jobs, psutil.virtual_memory().available)
    if jobs < args.jobs:
        print(f"rollout: {jobs} job(s), not {args.jobs}: memory for {jobs} terraform plan(s) only", file=sys.stderr)
    request = rollout.Request(names, args.outdir, args.records_dir, args.outputs_dir, jobs, args.dry_run,
                              args.format, args.resume, args.supersede, args.wave, args.github_summary)
    try:
        return rollout.run(request, settings, customers, lambda line: print(line, file=sys.stderr, flush=True))
    except (rollout.RolloutRefused, plan.PlanInputError) as e:
        _usage_error(f"rollout: {e}")


def _destroy(args: argparse.Namespace) -> int:
    from dataplane.ops.fleet import offboard

    settings, fleet = _project()

    def confirm(name: str, account: str) -> bool:
        """Once the name is confirmed, the run acts as the deployer in `account`."""
        if not (args.yes or _typed_name("destroy", f"Destroy {name}'s data plane in account {account}", name)):
            return False
        _act_as_deployer("destroy", settings, name, account)
        return True

    if args.base is None:
        customer = _customer(args.customer)[1]
        if not confirm(customer.name, customer.account_id):
            return 1
        return offboard.destroy(customer, args.outdir, args.records_dir, args.outputs_dir)
    try:
        return offboard.destroy_from(args.customer, args.base, args.outdir, fleet, confirm, args.records_dir,
                                     args.outputs_dir)
    except offboard.OffboardError as e:
        _usage_error(f"destroy: {e}")


def _typed_name(command: str, question: str, name: str) -> bool:
    """Whether `name` was typed in answer to `question` on a terminal; not on a terminal: exit 2 (`--yes` needed)."""
    if not sys.stdin.isatty():
        _usage_error(f"{command}: {name}: not confirmed: on a terminal, type the name when asked; elsewhere pass "
                     "--yes (make: YES=1)")
    print(f"{question}? Type {name} to confirm: ", end="", file=sys.stderr, flush=True)
    if sys.stdin.readline().strip() != name:
        print(f"{command}: {name}: not confirmed; nothing was changed", file=sys.stderr)
        return False
    return True


def _synth_ref(args: argparse.Namespace) -> int:
    from dataplane.ops.pipeline.ref_synth import RefError, synth_ref

    try:
        commit = synth_ref(args.ref, args.outdir)
    except RefError as e:
        _usage_error(str(e))
    print(f"synthesized {args.ref} ({commit[:12]}) into {args.outdir}", file=sys.stderr)
    return 0


def _activate(args: argparse.Namespace) -> int:
    settings, customer = _customer(args.customer)
    from dataplane.ops.fleet.activate import activate

    control_plane = _session(args.control_plane_profile, None) if args.control_plane_profile else None
    _act_as_deployer("activate", settings, customer.name, customer.account_id)
    return activate(customer, settings, _session(None, None), control_plane, args.outdir, args.outputs_dir,
                    args.records_dir)


def _sandbox(args: argparse.Namespace) -> int:
    from dataplane.config.errors import ConfigError
    from dataplane.config.settings import load_project
    from dataplane.ops import sandbox
    from dataplane.project import PROJECT_ROOT

    try:
        settings, customers = load_project(customers_dir=args.customers_dir and args.customers_dir.resolve())
        source = args.customers_dir.resolve() if args.customers_dir else (PROJECT_ROOT / settings.customers_dir)
        return sandbox.run(settings, customers, args.port, source)
    except (ConfigError, sandbox.SandboxError) as e:
        _usage_error(f"sandbox: {e}")


def _drift(args: argparse.Namespace) -> int:
    from functools import partial

    from dataplane.ops.fleet import drift

    progress = partial(print, file=sys.stderr, flush=True)
    if args.merge is not None:
        if args.customers or args.batch:
            _usage_error("drift: --merge reads the shards' reports: no CUSTOMER or --batch", 1)
        return drift.merge(args.merge, args.format, args.out, progress)
    settings = _project(status=1)[0]  # drift's 2 means drift found
    return drift.run(args.outdir, args.customers, settings, args.jobs, args.format, args.out, progress, args.batch)


def _issue(args: argparse.Namespace) -> int:
    from dataplane.ops.pipeline import comment

    return comment.run_issue(args.title, args.body_file, args.close, args.repo, args.api_url, args.author)


def _unlock(args: argparse.Namespace) -> int:
    settings, customer = _customer(args.customer)
    from dataplane.ops.fleet.deploy import SynthError
    from dataplane.ops.fleet.unlock import UnlockError, unlock

    try:
        print(unlock(customer, settings, args.outdir, _answer))
    except (UnlockError, SynthError) as e:
        print(f"unlock {customer.name}: {e}", file=sys.stderr)
        return 1
    return 0


def _answer(prompt: str) -> str:
    """The engineer's answer on standard input; none (end of input) is no."""
    try:
        return input(prompt)
    except EOFError:
        return ""


def _list(args: argparse.Namespace) -> int:
    from dataplane.ops.fleet import list_customers as fleet

    settings, customers = _project()
    found = fleet.states(customers, settings, args.outdir)
    print(fleet.as_json(customers, found) if args.format == "json" else fleet.table(customers, found))
    return 0


def _format_option(parser: argparse.ArgumentParser) -> None:
    """`--format table|json`, and `--json` for `--format json`."""
    parser.add_argument("--format", choices=("table", "json"), default="table", help="output format (table)")
    parser.add_argument("--json", dest="format", action="store_const", const="json", help="same as --format json")


def _print(report, fmt: str) -> int:
    print(report.json() if fmt == "json" else report.table())
    return report.exit_code


def _usage_error(message: str, status: int = 2) -> NoReturn:
    print(message, file=sys.stderr)
    raise SystemExit(status)


def _project(status: int = 2):
    """Settings and every customer, or exit `status` (2: bad input) listing every configuration problem."""
    from dataplane.config.errors import ConfigError
    from dataplane.config.settings import load_project

    try:
        return load_project()
    except ConfigError as e:
        _usage_error(f"invalid configuration:\n{e}", status)


def _settings():
    """The settings alone (no customer loaded), or exit 2 listing every configuration problem."""
    from dataplane.config.errors import ConfigError
    from dataplane.config.settings import load_settings

    try:
        return load_settings()
    except ConfigError as e:
        _usage_error(f"invalid configuration:\n{e}")


def _customer(name: str):
    """Settings and the customer called `name`, or exit 2 with one line naming the known customers."""
    from dataplane.config.settings import UnknownCustomer, customer_named

    settings, customers = _project()
    try:
        return settings, customer_named(customers, name)
    except UnknownCustomer as e:
        _usage_error(str(e))


def _deployer(command: str, settings, name: str, account: str, profile: str | None = None,
              region: str | None = None):
    """The deployer's credentials in `account`: `deployRoleName` assumed there when set, else the caller's
    (`profile`, else the standard chain); exit 1 with one line when the role cannot be assumed."""
    from dataplane.config.settings import UnknownCustomer, customer_named
    from dataplane.ops.account.aws import AWS_ERRORS, acting_as, aws_error
    from dataplane.policy import external_id_list

    role = settings.deploy_role_arn(account)
    try:  # the deploy role the customer's bootstrap creates requires the customer's ExternalId
        external_id = role and external_id_list(customer_named(_project()[1], name).external_id)[0]
    except UnknownCustomer:  # a customer removed from the fleet (destroy --base)
        external_id = None
    try:
        return acting_as(role, f"dataplane-{command}-{name}", os.environ, _session(profile, region), external_id)
    except AWS_ERRORS as e:
        _usage_error(f"{command} {name}: cannot assume {role}: {aws_error(e)}", 1)


def _act_as_deployer(command: str, settings, name: str, account: str) -> None:
    """From here on, this run (its AWS calls, terraform and the cdktf CLI) acts with the deployer's credentials in
    `account`: customer `name`'s, which a deploy, activate or destroy changes."""
    environment = _deployer(command, settings, name, account).environment
    for key in set(os.environ) - set(environment):
        del os.environ[key]
    os.environ.update(environment)


def _session(profile: str | None, region: str | None):
    import boto3
    from botocore.exceptions import BotoCoreError

    try:
        return boto3.Session(profile_name=profile, region_name=region)
    except BotoCoreError as e:
        _usage_error(str(e))
