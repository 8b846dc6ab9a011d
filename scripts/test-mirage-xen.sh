#!/usr/bin/env bash
# make test-mirage-xen: vchan-rs-xen (ocaml/xen) against mirage-xen, for
# Solo5's xen target, as opam-monorepo would build it.
#   usage: test-mirage-xen.sh              everything below
#          test-mirage-xen.sh --only NAME  the same preparation, then only the
#                 unikernel NAME (e.g. echo/echo, for make test-xen), built
#                 in _build/mirage-xen/_build/solo5/unikernels/NAME.exe
# On the host: makes (or reuses) the OCaml 5.4.1 chroot with Solo5 and
# ocaml-solo5 (scripts/solo5-toolchain.sh ensure), unpacks mirage-xen and its
# dependencies from the pinned tarballs into a scratch duniverse
# (scripts/duniverse.sh; $VCHAN_RS_THIRDPARTY, default ../shared/thirdparty)
# beside a copy of the project's source (scripts/unikernel-workspace.sh),
# then, in the chroot, builds:
#   0. in the workspace's default context, a Linux program that runs
#      Vchan_rs.Xenstore.Make against ocaml-vchan's Vchan.Xenstore.Make over
#      one in-memory store (test/mirage-xen/xenstore_compat);
#   then, in its solo5 context,
#   1. the library vchan-rs-xen, and a check that it is a Mirage_flow.S;
#   2. ocaml-vchan's lib_test/mirage server and client unikernels, their
#      unikernel.ml taken from ocaml-vchan.tar.gz with only names changed
#      (vchan-xen -> vchan-rs-xen, Vchan_xen -> Vchan_rs_xen, Vchan ->
#      Vchan_rs, by docs/mirage.md's rename.sh block), linked for Xen
#      (-z solo5-abi=xen) with test/mirage-xen's
#      main programs and the Mirage 3 names they use (OS, Mirage_console_lwt),
#      then checked with `solo5-elftool query-abi`;
#      As a control, the same unikernels, not renamed, link against
#      ocaml-vchan's own vchan-xen (unikernels/vchan-xen);
#      and test/mirage-xen's echo unikernel (make test-xen boots it),
#      linked and checked the same way;
#   3. mirage-qubes (with ohex), its sources from mirage-qubes.tar.gz
#      renamed the same way, and a unikernel using it, linked for Xen and
#      checked the same way.
#   4. the mirage tool itself (mirage 4.11 with functoria, from
#      mirage.tar.gz, over Debian sid's astring, bos, cmdliner, fmt, fpath,
#      ipaddr, logs, rresult and uri), in the default context of a workspace
#      of its own (_build/mirage-tool); then `mirage configure -t xen` and
#      `-t hvt` on docs/mirage.md's config.ml block, beside a unikernel.ml
#      with a Main.start of no device; checks that it exits 0 and that the
#      dune and opam files it generates name vchan-rs-xen.
#      One patch, in the scratch copy only: functoria's lib/functoria/opam.ml
#      parses an scp-style git remote (USER@HOST:PATH), when it guesses the
#      generated opam file's url from the unikernel's git checkout, with
#      emile (an RFC 5322 address parser), which neither Debian nor the
#      pinned sources have (nor emile's dependency pecu). The patch replaces
#      that one function, parse_ssh, by a split at the first `@` and the
#      next `:`, and puts ipaddr (which emile brought, and mirage.devices
#      uses) in emile's place in lib/functoria/dune; nothing else in
#      mirage or functoria uses emile. The test runs it: the unikernel's
#      scratch directory is in a git repository (branch main) whose origin is
#      git@example.org:vchan/example.git, and the generated opam file's url
#      must be git+https://example.org/vchan/example.git#main.
# Before that, on the host, it runs docs/mirage.md's rustup.sh block.
# Nothing runs: there is no Xen here. Prints one line per check and a closing
# `test result:` line; exits 1 if a check failed.
# Scratch workspace: _build/mirage-xen (inside the project, which is all the
# chroot sees), with its own cargo target directory.
set -euo pipefail

project=$(cd "$(dirname "$0")/.." && pwd)
ws=$project/_build/mirage-xen
thirdparty=${VCHAN_RS_THIRDPARTY:-$project/../shared/thirdparty}

# The duniverse: mirage-xen and what it needs, built from source in the solo5
# context. fmt, logs and cmdliner build with topkg upstream: dune files below.
duniverse=(lwt ocaml-cstruct ocaml-xenstore shared-memory-ring lwt-dllist io-page
    fmt-upstream logs-upstream cmdliner mirage bheap duration metrics mirage-sleep
    mirage-xen ohex mirage-flow ocaml-vchan)

# docs/mirage.md's commands, as the page has them.
block() { sh "$project/scripts/readme-block.sh" "$project/docs/mirage.md" "$1"; }

passed=0 failed=0
pass() { passed=$((passed + 1)); echo "test-mirage-xen: ok: $1"; }
fail() { failed=$((failed + 1)); echo "test-mirage-xen: FAILED: $1"; }

# Built for Xen: solo5-elftool reads the ABI note of the binary.
abi_xen() {
    local out
    out=$(solo5-elftool query-abi "$1" 2>&1) || { echo "$out"; return 1; }
    echo "$out" | sed 's/^/    /'
    grep -q '"target": "xen"' <<< "$out"
}

inside() {
    cd "$ws"
    export PATH="$1/bin:$PATH"
    local built=_build/solo5
    echo "test-mirage-xen: OCaml $(ocamlfind -toolchain solo5 ocamlopt -version) (solo5), dune $(dune --version)"
    local t0=$SECONDS line
    if dune build --root . -j 1 --display quiet ./_build/default/xenstore_compat/compat.exe 2>&1; then
        pass "xenstore_compat builds against ocaml-vchan ($((SECONDS - t0)) s)"
        while IFS= read -r line; do
            case $line in
                "xenstore-compat: ok: "*) pass "${line#xenstore-compat: ok: }" ;;
                "xenstore-compat: FAILED: "*) fail "${line#xenstore-compat: FAILED: }" ;;
                *) echo "$line" ;;
            esac
        done < <(./_build/default/xenstore_compat/compat.exe 2>&1 || echo "xenstore-compat: FAILED: compat.exe exited with status $?")
    else
        fail "xenstore_compat builds against ocaml-vchan"
    fi
    t0=$SECONDS
    if dune build --root . -j 1 --display quiet "./$built/vchan-rs/ocaml/xen/vchan_rs_xen.cmxa" 2>&1; then
        pass "vchan-rs-xen builds for Solo5's xen target against mirage-xen ($((SECONDS - t0)) s)"
    else
        fail "vchan-rs-xen builds for Solo5's xen target against mirage-xen"
    fi
    t0=$SECONDS
    if dune build --root . -j 1 --display quiet "./$built/unikernels/drop_in/drop_in_check.cmxa" 2>&1; then
        pass "Vchan_rs_xen is a Mirage_flow.S of mirage-flow 4 ($((SECONDS - t0)) s)"
    else
        fail "Vchan_rs_xen is a Mirage_flow.S of mirage-flow 4"
    fi
    local name exe names="vchan-xen/server vchan/server vchan/client qubes/main echo/echo"
    # --only NAME (make test-xen): that unikernel alone.
    [ -z "$2" ] || names=$2
    for name in $names; do
        exe=$built/unikernels/$name.exe
        t0=$SECONDS
        if dune build --root . -j 1 --display quiet "./$exe" 2>&1; then
            pass "$name unikernel links with -z solo5-abi=xen ($((SECONDS - t0)) s)"
            if abi_xen "$exe"; then pass "$name: solo5-elftool query-abi says xen"
            else fail "$name: solo5-elftool query-abi says xen"; fi
        else
            fail "$name unikernel links with -z solo5-abi=xen"
        fi
    done
    [ -n "$2" ] || mirage_tool
    if [ "$failed" -eq 0 ]; then r=ok; else r=FAILED; fi
    echo "test result: $r. $passed passed; $failed failed"
    [ "$failed" -eq 0 ]
}

# 4. The mirage tool, then docs/mirage.md's config.ml through it.
mirage_tool() {
    local tool=$project/_build/mirage-tool t0=$SECONDS
    if ! dune build --root "$tool/mirage" --build-dir "$tool/_build" -j 1 --display quiet \
        --only-packages mirage --profile release @install 2>&1; then
        fail "the mirage tool builds (mirage 4.11, functoria)"
        return
    fi
    pass "the mirage tool builds (mirage 4.11, functoria; $((SECONDS - t0)) s)"
    local bin=$tool/_build/install/default/bin/mirage target dir out
    export OCAMLPATH=$tool/_build/install/default/lib
    for target in xen hvt; do
        dir=$project/_build/mirage-config/$target
        cd "$dir"
        t0=$SECONDS
        if ! out=$("$bin" configure -t "$target" 2>&1); then
            echo "$out" | sed 's/^/    /'
            fail "mirage configure -t $target on docs/mirage.md's config.ml exits 0"
            continue
        fi
        echo "$out" | sed 's/^/    /'
        pass "mirage configure -t $target on docs/mirage.md's config.ml exits 0 ($((SECONDS - t0)) s)"
        # The unikernel links the library ...
        if grep -A30 '(libraries' dune.build 2>/dev/null | sed '/)/q' | grep -qw vchan-rs-xen; then
            pass "$target: the generated dune.build's libraries name vchan-rs-xen"
        else
            fail "$target: the generated dune.build's libraries name vchan-rs-xen: $(cat dune.build 2>&1)"
        fi
        # ... main.ml starts the job ...
        if grep -q 'Unikernel.Main.start ' mirage/main.ml 2>/dev/null; then
            pass "$target: the generated mirage/main.ml calls Unikernel.Main.start"
        else
            fail "$target: the generated mirage/main.ml calls Unikernel.Main.start"
        fi
        # ... and its opam file depends on it, and the url
        # guessed from the git remote (the patched parse_ssh).
        local opam=mirage/vchan-example-$target.opam
        if sed -n '/^depends:/,/^]/p' "$opam" 2>/dev/null | grep -q '"vchan-rs-xen"'; then
            pass "$target: the generated $opam depends on vchan-rs-xen"
        else
            fail "$target: the generated $opam depends on vchan-rs-xen: $(cat "$opam" 2>&1)"
        fi
        if grep -q 'src: "git+https://example.org/vchan/example.git#main"' "$opam" 2>/dev/null; then
            pass "$target: the generated opam's url comes from the scp-style git remote"
        else
            fail "$target: the generated opam's url comes from the scp-style git remote: $(grep -A2 '^url' "$opam" 2>&1)"
        fi
    done
    cd "$ws"
}

if [ "${1:-}" = --inside ]; then
    inside "$2" "${3:-}"
    exit
fi
only=
if [ "${1:-}" = --only ]; then
    only=$2
fi

# On the host.
echo "test-mirage-xen: docs/mirage.md: $(block rustup.sh | tr -s ' \n' ' ')"
PATH="$HOME/.cargo/bin:$PATH" sh -eu <(block rustup.sh)
prefix=$(bash "$project/scripts/solo5-toolchain.sh" ensure | tail -n 1)
bash "$project/scripts/unikernel-workspace.sh" "$ws"
bash "$project/scripts/duniverse.sh" "$ws/duniverse" "${duniverse[@]}" > /dev/null
bash "$project/scripts/duniverse.sh" "$ws/upstream" mirage-qubes > /dev/null

# dune files for the libraries that build with topkg (only the parts used).
du=$ws/duniverse
for p in fmt logs cmdliner; do
    d=$p; [ "$p" = cmdliner ] || d=$p-upstream
    printf '(lang dune 3.0)\n(package (name %s))\n' "$p" > "$du/$d/dune-project"
done
echo '(library (name fmt) (public_name fmt) (modules fmt) (wrapped false))' > "$du/fmt-upstream/src/dune"
echo '(library (name logs) (public_name logs) (modules logs) (wrapped false))' > "$du/logs-upstream/src/dune"
echo '(library (name logs_lwt) (public_name logs.lwt) (libraries lwt logs) (wrapped false))' > "$du/logs-upstream/src/lwt/dune"
echo '(library (name cmdliner) (public_name cmdliner) (wrapped false))' > "$du/cmdliner/src/dune"

# mirage-qubes with only names changed (a vendored copy of its own; the
# pristine one in upstream/ is not built).
rm -rf "$ws/renamed"
mkdir -p "$ws/renamed"
cp -r "$ws/upstream/mirage-qubes" "$ws/renamed/mirage-qubes"
block rename.sh > "$ws/rename.sh"
(cd "$ws/renamed/mirage-qubes" && sh -eu "$ws/rename.sh")
if block qubes-dune | cmp -s - "$ws/renamed/mirage-qubes/lib/dune"; then
    pass "docs/mirage.md's qubes-dune block is mirage-qubes' lib/dune, renamed"
else
    fail "docs/mirage.md's qubes-dune block differs from mirage-qubes' lib/dune, renamed: $(cat "$ws/renamed/mirage-qubes/lib/dune")"
fi

# The unikernels: test/mirage-xen's main programs and dune rules, and
# ocaml-vchan's unikernel.ml with only names changed.
# Its server/ and client/ hold the same unikernel.ml (both jobs).
rm -rf "$ws/unikernels" "$ws/xenstore_compat"
cp -r "$project/test/mirage-xen/unikernels" "$project/test/mirage-xen/xenstore_compat" "$ws/"
lt=$ws/duniverse/ocaml-vchan/lib_test/mirage
cmp -s "$lt/server/unikernel.ml" "$lt/client/unikernel.ml" ||
    { echo "test-mirage-xen: ocaml-vchan's server and client unikernel.ml differ: one file no longer serves both" >&2; exit 1; }
mkdir "$ws/renamed/lib_test-mirage"
cp "$lt/server/unikernel.ml" "$ws/renamed/lib_test-mirage/"
(cd "$ws/renamed/lib_test-mirage" && sh -eu "$ws/rename.sh")
cp "$ws/renamed/lib_test-mirage/unikernel.ml" "$ws/unikernels/vchan/"
# The control: the same, unrenamed, over ocaml-vchan's own vchan-xen.
cp -r "$ws/unikernels/vchan" "$ws/unikernels/vchan-xen"
cp "$lt/server/unikernel.ml" "$ws/unikernels/vchan-xen/"
sed -i 's/\bvchan-rs-xen\b/vchan-xen/' "$ws/unikernels/vchan-xen/dune"

# 4. The mirage tool's sources (a copy of their own, unpacked anew each run),
# with functoria's one use of emile replaced (see the top of this file).
tool=$project/_build/mirage-tool
rm -rf "$tool/mirage"
mkdir -p "$tool"
tar -xzf "$thirdparty/mirage.tar.gz" -C "$tool"
[ -d "$tool/mirage/lib/functoria" ] || { echo "test-mirage-xen: mirage.tar.gz has no mirage/lib/functoria" >&2; exit 1; }
fopam=$tool/mirage/lib/functoria/opam.ml
awk '
    /^    let parse_ssh str =$/ {
        skip = 1
        print "    let parse_ssh str ="
        print "      (* vchan-rs test-mirage-xen: USER@HOST:PATH split by hand, in place of an RFC 5322 parser *)"
        print "      let bad s cs = s = \"\" || String.exists (fun c -> String.contains cs c) s in"
        print "      match Astring.String.cut ~sep:\"@\" str with"
        print "      | Some (user, rest) when not (bad user \":/\") -> ("
        print "          match Astring.String.cut ~sep:\":\" rest with"
        print "          | Some (hostname, path) when not (bad hostname \"/\") ->"
        print "              R.ok { scheme = `SSH user; path = \"/\" ^ path; port = None; hostname }"
        print "          | _ -> R.error_msg \"Invalid SSH pattern\")"
        print "      | _ -> R.error_msg \"Invalid SSH pattern\""
        print "    in"
        next
    }
    skip && /^    let parse_uri str =$/ { skip = 0 }
    !skip { print }' "$fopam" > "$fopam.new"
grep -q 'vchan-rs test-mirage-xen' "$fopam.new" && grep -q '^    let parse_uri str =$' "$fopam.new" ||
    { echo "test-mirage-xen: $fopam has no parse_ssh then parse_uri as this script expects: review the patch" >&2; exit 1; }
mv "$fopam.new" "$fopam"
sed -i "s/^  emile$/  ipaddr/" "$tool/mirage/lib/functoria/dune"
if grep -rqw -e Emile -e emile "$tool/mirage/lib" "$tool/mirage/bin"; then
    echo "test-mirage-xen: emile is still used in $tool/mirage after the patch" >&2
    exit 1
fi
# A unikernel directory per target: docs/mirage.md's config.ml, a Main of no
# device (Mirage 4 calls `start ()`), in a git repository (branch main, one
# commit) whose origin is scp-style (what the patched function parses).
cfg=$project/_build/mirage-config
rm -rf "$cfg"
for target in xen hvt; do
    mkdir -p "$cfg/$target"
    block config.ml > "$cfg/$target/config.ml"
    printf 'module Main = struct\n  let start () = Lwt.return_unit\nend\n' > "$cfg/$target/unikernel.ml"
done
git -C "$cfg" init -q
git -C "$cfg" symbolic-ref HEAD refs/heads/main
git -C "$cfg" add .
git -C "$cfg" -c user.name=test -c user.email=test@example.org commit -q -m unikernels
git -C "$cfg" remote add origin git@example.org:vchan/example.git

cat > "$ws/dune" << 'EOF'
(vendored_dirs duniverse renamed)
(data_only_dirs upstream cargo-target)
EOF
exec bash "$project/scripts/ocaml5-env.sh" run "$project" bash scripts/test-mirage-xen.sh --inside "$prefix" "$only"
