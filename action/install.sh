#!/usr/bin/env bash
# Installs the llmops-ci release binary for this runner, or picks the one already on PATH,
# and sets the step output `binary` to its path. Called by action.yml, which passes the
# action's inputs and contexts as LLMOPS_ACTION_* variables.
#
# Release assets: llmops-ci-<version>-linux-<arch>.tar.xz and its .sha256 file, attached
# to the release tagged v<version> of the action's repository, <arch> being x86_64 or aarch64.
set -euo pipefail

fail() {
    echo "::error title=llmops-ci setup::$*"
    exit 1
}

server_url="${GITHUB_SERVER_URL:-https://github.com}"
requested="${LLMOPS_ACTION_VERSION:-}"
requested="${requested#v}"

# The action's repository: from the github context, else from the checkout path of a remote
# action (.../_actions/OWNER/REPO/REF/...), else the workflow's own repository, which is
# where a local `uses: ./action` comes from.
resolve_repository() {
    if [ -n "${LLMOPS_ACTION_REPOSITORY:-}" ]; then
        echo "$LLMOPS_ACTION_REPOSITORY"
        return
    fi
    local action_path="${GITHUB_ACTION_PATH:-}"
    if [[ "$action_path" == */_actions/*/*/* ]]; then
        local rest="${action_path#*/_actions/}"
        echo "$rest" | cut -d / -f 1-2
        return
    fi
    echo "${GITHUB_REPOSITORY:?GITHUB_REPOSITORY is not set; this script runs inside GitHub Actions}"
}

# Prints the version of the latest release, read from the redirect of /releases/latest,
# which needs no API token and counts against no API rate limit.
resolve_latest() {
    local repository="$1"
    local final_url
    final_url="$(curl -fsSL --retry 3 --retry-connrefused -o /dev/null -w '%{url_effective}' \
        "$server_url/$repository/releases/latest")" ||
        fail "could not look up the latest release of $repository at $server_url; set the version input"
    case "$final_url" in
        */releases/tag/*) ;;
        *) fail "$repository has no published release at $server_url; set the version input or put llmops-ci on PATH" ;;
    esac
    local tag="${final_url##*/releases/tag/}"
    echo "${tag#v}"
}

write_output() {
    echo "binary=$1" >>"$GITHUB_OUTPUT"
    echo "Using $("$1" --version) at $1"
}

if command -v llmops-ci >/dev/null 2>&1; then
    on_path="$(command -v llmops-ci)"
    path_version="$("$on_path" --version | awk '{ print $2 }')"
    if [ -z "$requested" ] || [ "$requested" = "$path_version" ]; then
        write_output "$on_path"
        exit 0
    fi
    echo "Ignoring $on_path (version $path_version), because version $requested was requested"
fi

[ "${LLMOPS_ACTION_RUNNER_OS:-}" = "Linux" ] ||
    fail "release binaries exist for Linux runners only, and this runner is ${LLMOPS_ACTION_RUNNER_OS:-unknown}; put llmops-ci on PATH before this step"
case "${LLMOPS_ACTION_RUNNER_ARCH:-}" in
    X64) arch="x86_64" ;;
    ARM64) arch="aarch64" ;;
    *) fail "release binaries exist for X64 and ARM64 runners, and this runner is ${LLMOPS_ACTION_RUNNER_ARCH:-unknown}" ;;
esac

repository="$(resolve_repository)"
if [ -z "$requested" ]; then
    action_ref="${LLMOPS_ACTION_REF:-}"
    if [[ "$action_ref" =~ ^v?[0-9]+\.[0-9]+\.[0-9]+([-+][0-9A-Za-z.-]+)?$ ]]; then
        requested="${action_ref#v}"
    else
        requested="latest"
    fi
fi
if [ "$requested" = "latest" ]; then
    requested="$(resolve_latest "$repository")"
fi
[[ "$requested" =~ ^[0-9]+\.[0-9]+\.[0-9]+([-+][0-9A-Za-z.-]+)?$ ]] ||
    fail "invalid version '$requested': expected a release version such as 0.1.0, or latest"

install_dir="${RUNNER_TEMP:?RUNNER_TEMP is not set}/llmops-ci/$requested-$arch"
if [ -x "$install_dir/llmops-ci" ]; then
    echo "$install_dir" >>"$GITHUB_PATH"
    write_output "$install_dir/llmops-ci"
    exit 0
fi

asset="llmops-ci-$requested-linux-$arch.tar.xz"
base_url="$server_url/$repository/releases/download/v$requested"
download_dir="$(mktemp -d "$RUNNER_TEMP/llmops-ci-download.XXXXXX")"
trap 'rm -rf "$download_dir"' EXIT
echo "Downloading $base_url/$asset"
for file in "$asset" "$asset.sha256"; do
    curl -fsSL --retry 3 --retry-connrefused -o "$download_dir/$file" "$base_url/$file" ||
        fail "could not download $base_url/$file; check that release v$requested of $repository has this asset"
done

# The .sha256 file is a `sha256sum` line. Only its hash is compared, so the file name in it does not matter.
expected_hash="$(awk 'NR == 1 { print $1 }' "$download_dir/$asset.sha256")"
[[ "$expected_hash" =~ ^[0-9a-f]{64}$ ]] || fail "$asset.sha256 does not start with a SHA-256 hash"
actual_hash="$(sha256sum "$download_dir/$asset" | awk '{ print $1 }')"
[ "$actual_hash" = "$expected_hash" ] ||
    fail "SHA-256 mismatch for $asset: expected $expected_hash, got $actual_hash"

# Extracting next to the download and then moving the file means a half-written binary
# never sits in install_dir, which a later use of the action in this job would reuse.
tar -xJf "$download_dir/$asset" -C "$download_dir" llmops-ci ||
    fail "could not extract llmops-ci from $asset"
chmod 0755 "$download_dir/llmops-ci"
mkdir -p "$install_dir"
mv "$download_dir/llmops-ci" "$install_dir/llmops-ci"
echo "$install_dir" >>"$GITHUB_PATH"
write_output "$install_dir/llmops-ci"
