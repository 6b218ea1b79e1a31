// pgfleet-langhost: a small Python language host for the Pulumi engine.
//
// Written for pgfleet's offline toolchain because the upstream
// pulumi-language-python module is not obtainable from the Go module proxy
// reachable here. It implements the subset of the LanguageRuntime gRPC
// service the engine needs for `pulumi preview/up/destroy/about/install`
// and for Python plugins (policy packs, component providers: RunPlugin):
// the heavy lifting (virtualenv handling, pip, package listing) is done by the
// published sdk/v3 `python/toolchain` library, and the program itself is run
// by the `pulumi-language-python-exec` script shipped in the sdk/v3 module,
// which must sit next to this binary.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/common/util/logging"
	"github.com/pulumi/pulumi/sdk/v3/go/common/util/rpcutil"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"github.com/pulumi/pulumi/sdk/v3/python/toolchain"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/emptypb"
)

// version is set with -ldflags "-X main.version=..." at build time.
var version = "0.0.0-dev"

const execScriptName = "pulumi-language-python-exec"

// exit code the exec script uses after it already printed a user-facing error
const exitUserActionable = 32

type host struct {
	pulumirpc.UnimplementedLanguageRuntimeServer

	execScript string
	engine     string
	tracing    string
	cancel     context.CancelFunc
	cancelCtx  context.Context
}

func fatal(err error) {
	fmt.Fprintf(os.Stderr, "pulumi-language-python: %v\n", err)
	os.Exit(1)
}

func main() {
	fs := flag.NewFlagSet("pulumi-language-python", flag.ContinueOnError)
	tracing := fs.String("tracing", "", "zipkin tracing endpoint (accepted, unused)")
	showVersion := fs.Bool("version", false, "print version and exit")
	useExec := fs.String("use-executor", "", "path of the exec script (default: beside this binary)")
	// tolerate flags newer engines may pass
	fs.String("root", "", "ignored")
	// Engines built from sdk/v3 before the runtime options moved into ProgramInfo (such as the
	// plugin host inside pulumi-language-yaml v1.25.0, sdk/v3 v3.206.0) pass each runtime option
	// of Pulumi.yaml / PulumiPlugin.yaml as a flag too. The options are read from the requests.
	for _, o := range []string{"virtualenv", "toolchain", "typechecker"} {
		fs.String(o, "", "runtime option (ignored: read from each request's ProgramInfo)")
	}
	// Under `pulumi --logflow` the engine starts every plugin with its logging flags
	// (`--logtostderr`, `-v=N`). They are glog's, which sdk/v3's logging package registers on
	// flag.CommandLine (where logging.InitLogging reads them back): accept them all here.
	flag.CommandLine.VisitAll(func(f *flag.Flag) {
		if fs.Lookup(f.Name) == nil {
			fs.Var(f.Value, f.Name, f.Usage)
		}
	})
	if err := fs.Parse(os.Args[1:]); err != nil {
		os.Exit(2)
	}
	if *showVersion {
		fmt.Println(version)
		return
	}
	logging.InitLogging(false, 0, false)

	script := *useExec
	if script == "" {
		self, err := os.Executable()
		if err != nil {
			fatal(err)
		}
		if resolved, err := filepath.EvalSymlinks(self); err == nil {
			self = resolved
		}
		script = filepath.Join(filepath.Dir(self), execScriptName)
	}
	if _, err := os.Stat(script); err != nil {
		fatal(fmt.Errorf("missing executor %s: %w", script, err))
	}

	h := &host{execScript: script, tracing: *tracing}
	h.cancelCtx, h.cancel = context.WithCancel(context.Background())
	if args := fs.Args(); len(args) > 0 {
		h.engine = args[0]
	}

	sigCtx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	done := make(chan bool)
	go func() { <-sigCtx.Done(); close(done) }()

	if h.engine != "" {
		if err := rpcutil.Healthcheck(sigCtx, h.engine, 5*time.Minute, stop); err != nil {
			fatal(fmt.Errorf("engine health check: %w", err))
		}
	}

	handle, err := rpcutil.ServeWithOptions(rpcutil.ServeOptions{
		Cancel: done,
		Init: func(s *grpc.Server) error {
			pulumirpc.RegisterLanguageRuntimeServer(s, h)
			return nil
		},
	})
	if err != nil {
		fatal(err)
	}
	fmt.Printf("%d\n", handle.Port)
	if err := <-handle.Done; err != nil {
		fatal(err)
	}
}

// options turns the runtime options of Pulumi.yaml into toolchain options.
func options(info *pulumirpc.ProgramInfo) (toolchain.PythonOptions, error) {
	o := toolchain.PythonOptions{Toolchain: toolchain.Pip}
	if info == nil {
		return o, nil
	}
	o.Root, o.ProgramDir = info.RootDirectory, info.ProgramDirectory
	o.Toolchain = toolchain.Auto
	m := map[string]any{}
	if info.Options != nil {
		m = info.Options.AsMap()
	}
	str := func(k string) (string, error) {
		v, ok := m[k]
		if !ok {
			return "", nil
		}
		s, ok := v.(string)
		if !ok {
			return "", fmt.Errorf("runtime option %q must be a string", k)
		}
		return s, nil
	}
	var err error
	if o.Virtualenv, err = str("virtualenv"); err != nil {
		return o, err
	}
	tc, err := str("toolchain")
	if err != nil {
		return o, err
	}
	switch tc {
	case "":
	case "pip":
		o.Toolchain = toolchain.Pip
	case "poetry":
		o.Toolchain = toolchain.Poetry
	case "uv":
		o.Toolchain = toolchain.Uv
	default:
		return o, fmt.Errorf("unsupported toolchain %q", tc)
	}
	checker, err := str("typechecker")
	if err != nil {
		return o, err
	}
	switch checker {
	case "":
	case "mypy":
		o.Typechecker = toolchain.TypeCheckerMypy
	case "pyright":
		o.Typechecker = toolchain.TypeCheckerPyright
	default:
		return o, fmt.Errorf("unsupported typechecker %q", checker)
	}
	return o, nil
}

func (h *host) GetPluginInfo(context.Context, *emptypb.Empty) (*pulumirpc.PluginInfo, error) {
	return &pulumirpc.PluginInfo{Version: version}, nil
}

func (h *host) Handshake(ctx context.Context, req *pulumirpc.LanguageHandshakeRequest,
) (*pulumirpc.LanguageHandshakeResponse, error) {
	h.engine = req.EngineAddress
	return &pulumirpc.LanguageHandshakeResponse{}, nil
}

func (h *host) Cancel(context.Context, *emptypb.Empty) (*emptypb.Empty, error) {
	h.cancel()
	return &emptypb.Empty{}, nil
}

// listScript prints, for every installed distribution whose name starts with
// "pulumi", its name, version and the text of its pulumi-plugin.json (if any).
const listScript = `
import json, importlib.metadata as md
out = []
for d in md.distributions():
    name = (d.metadata['Name'] or '')
    if not name.lower().replace('_', '-').startswith('pulumi'):
        continue
    plugin = None
    for f in (d.files or []):
        if f.name == 'pulumi-plugin.json':
            try:
                plugin = f.read_text()
            except Exception:
                pass
            break
    out.append({'name': name, 'version': d.version, 'plugin': plugin})
print(json.dumps(out))
`

type pyDist struct {
	Name    string  `json:"name"`
	Version string  `json:"version"`
	Plugin  *string `json:"plugin"`
}

type pluginJSON struct {
	Resource bool   `json:"resource"`
	Name     string `json:"name"`
	Version  string `json:"version"`
	Server   string `json:"server"`
	Param    *struct {
		Name    string `json:"name"`
		Version string `json:"version"`
		Value   []byte `json:"value"`
	} `json:"parameterization"`
}

var plainVersion = regexp.MustCompile(`^\d+(\.\d+)*$`)

// pep440ToSemver handles the release forms providers publish (N.N.N, N.N).
func pep440ToSemver(v string) (string, bool) {
	if !plainVersion.MatchString(v) {
		return "", false
	}
	parts := strings.Split(v, ".")
	for len(parts) < 3 {
		parts = append(parts, "0")
	}
	return "v" + strings.Join(parts, "."), true
}

func (h *host) GetRequiredPackages(ctx context.Context, req *pulumirpc.GetRequiredPackagesRequest,
) (*pulumirpc.GetRequiredPackagesResponse, error) {
	opts, err := options(req.Info)
	if err != nil {
		return nil, err
	}
	tc, err := toolchain.ResolveToolchain(opts)
	if err != nil {
		return nil, err
	}
	cmd, err := tc.Command(ctx, "-c", listScript)
	if err != nil {
		return nil, err
	}
	cmd.Stderr = os.Stderr
	raw, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("listing python packages: %w", err)
	}
	var dists []pyDist
	if err := json.Unmarshal(raw, &dists); err != nil {
		return nil, fmt.Errorf("parsing python package list: %w", err)
	}
	var pkgs []*pulumirpc.PackageDependency
	for _, d := range dists {
		norm := strings.ToLower(strings.ReplaceAll(d.Name, "_", "-"))
		if norm == "pulumi" || norm == "pulumi-policy" || norm == "pulumi-esc-sdk" {
			continue
		}
		var pj pluginJSON
		if d.Plugin != nil {
			if err := json.Unmarshal([]byte(*d.Plugin), &pj); err != nil {
				return nil, fmt.Errorf("pulumi-plugin.json of %s: %w", d.Name, err)
			}
			if !pj.Resource {
				continue
			}
		} else if !strings.HasPrefix(norm, "pulumi-") {
			continue
		}
		name, ver := pj.Name, pj.Version
		if name == "" {
			name = strings.TrimPrefix(norm, "pulumi-")
		}
		if ver == "" {
			v, ok := pep440ToSemver(d.Version)
			if !ok {
				logging.V(5).Infof("skipping %s: cannot map version %s", d.Name, d.Version)
				continue
			}
			ver = v
		}
		if !strings.HasPrefix(ver, "v") {
			ver = "v" + ver
		}
		dep := &pulumirpc.PackageDependency{Name: name, Version: ver, Kind: "resource", Server: pj.Server}
		if pj.Param != nil {
			dep.Parameterization = &pulumirpc.PackageParameterization{
				Name: pj.Param.Name, Version: pj.Param.Version, Value: pj.Param.Value,
			}
		}
		pkgs = append(pkgs, dep)
	}
	return &pulumirpc.GetRequiredPackagesResponse{Packages: pkgs}, nil
}

// interruptOnCancel makes the end of cmd's context an interrupt (Python's KeyboardInterrupt, so
// the process can clean up), then a kill if it has not exited 5 s later.
func interruptOnCancel(cmd *exec.Cmd) {
	cmd.Cancel = func() error {
		if err := cmd.Process.Signal(os.Interrupt); err != nil {
			return cmd.Process.Kill()
		}
		return nil
	}
	cmd.WaitDelay = 5 * time.Second
}

func (h *host) Run(ctx context.Context, req *pulumirpc.RunRequest) (*pulumirpc.RunResponse, error) {
	if h.engine == "" {
		return nil, errors.New("no engine address: Handshake must precede Run")
	}
	opts, err := options(req.Info)
	if err != nil {
		return nil, err
	}
	tc, err := toolchain.ResolveToolchain(opts)
	if err != nil {
		return nil, err
	}
	if err := tc.ValidateVenv(ctx); err != nil {
		return nil, err
	}

	args := []string{h.execScript}
	add := func(flagName, val string) {
		if val != "" {
			args = append(args, "--"+flagName, val)
		}
	}
	add("monitor", req.GetMonitorAddress())
	add("engine", h.engine)
	add("project", req.GetProject())
	if req.Info != nil {
		add("root_directory", req.Info.RootDirectory)
	}
	add("stack", req.GetStack())
	add("pwd", req.GetPwd())
	add("dry_run", strconv.FormatBool(req.GetDryRun()))
	add("parallel", strconv.Itoa(int(req.GetParallel())))
	add("tracing", h.tracing)
	add("organization", req.GetOrganization())
	entry := "."
	if req.Info != nil && req.Info.EntryPoint != "" {
		entry = req.Info.EntryPoint
	}
	args = append(args, entry)
	args = append(args, req.GetArgs()...)

	runCtx, runCancel := context.WithCancel(h.cancelCtx)
	defer runCancel()
	context.AfterFunc(ctx, runCancel)
	cmd, err := tc.Command(runCtx, args...)
	if err != nil {
		return nil, err
	}
	interruptOnCancel(cmd)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	env := cmd.Env
	if env == nil {
		env = os.Environ()
	}
	if cfg := req.GetConfig(); cfg != nil {
		b, err := json.Marshal(cfg)
		if err != nil {
			return nil, err
		}
		env = append(env, "PULUMI_CONFIG="+string(b))
	}
	secretKeys := req.GetConfigSecretKeys()
	if secretKeys == nil {
		secretKeys = []string{}
	}
	b, err := json.Marshal(secretKeys)
	if err != nil {
		return nil, err
	}
	env = append(env, "PULUMI_CONFIG_SECRET_KEYS="+string(b))
	cmd.Env = env

	if opts.Typechecker != toolchain.TypeCheckerNone {
		name := "mypy"
		if opts.Typechecker == toolchain.TypeCheckerPyright {
			name = "pyright"
		}
		tcmd, err := tc.ModuleCommand(ctx, name, req.Info.ProgramDirectory)
		if err != nil {
			return nil, err
		}
		tcmd.Dir = req.Info.ProgramDirectory
		tcmd.Stdout, tcmd.Stderr = os.Stdout, os.Stderr
		if err := tcmd.Run(); err != nil {
			return nil, fmt.Errorf("%s failed: %w", name, err)
		}
	}

	if err := cmd.Run(); err != nil {
		_ = os.Stdout.Sync()
		_ = os.Stderr.Sync()
		var exitErr *exec.ExitError
		if errors.As(err, &exitErr) {
			if ws, ok := exitErr.Sys().(syscall.WaitStatus); ok && ws.ExitStatus() == exitUserActionable {
				return &pulumirpc.RunResponse{Bail: true}, nil
			}
			return &pulumirpc.RunResponse{
				Error: fmt.Sprintf("program exited with non-zero exit code: %d", exitErr.ExitCode()),
			}, nil
		}
		return &pulumirpc.RunResponse{Error: fmt.Sprintf("could not run python program: %v", err)}, nil
	}
	return &pulumirpc.RunResponse{}, nil
}

// RunPlugin runs a plugin written in Python: a policy pack (PulumiPolicy.yaml) or a component
// provider (PulumiPlugin.yaml), each a directory whose __main__.py serves gRPC and prints its
// port. The plugin's stdout and stderr go back to the engine over the stream (the port is read
// from stdout), then its exit code. The virtualenv of the plugin's runtime options is used when
// it names one; otherwise the Python on PATH, so a pack runs however its user installed it.
func (h *host) RunPlugin(req *pulumirpc.RunPluginRequest, server pulumirpc.LanguageRuntime_RunPluginServer) error {
	opts, err := options(req.Info)
	if err != nil {
		return err
	}
	dir := req.GetInfo().GetProgramDirectory()
	if _, err := os.Stat(filepath.Join(dir, "__main__.py")); err != nil {
		return fmt.Errorf("python plugin in %q: no __main__.py to run: %w", dir, err)
	}
	tc, err := toolchain.ResolveToolchain(opts)
	if err != nil {
		return err
	}
	cmd, err := tc.Command(server.Context(), append([]string{dir}, req.GetArgs()...)...)
	if err != nil {
		return err
	}
	// The engine ends a plugin by cancelling the stream: it is interrupted as a program is.
	interruptOnCancel(cmd)
	closer, stdout, stderr, err := rpcutil.MakeRunPluginStreams(server, false)
	if err != nil {
		return err
	}
	defer closer.Close()
	cmd.Dir = req.GetPwd()
	if cmd.Env == nil {
		cmd.Env = os.Environ()
	}
	cmd.Env = append(cmd.Env, req.GetEnv()...)
	cmd.Stdout, cmd.Stderr = stdout, stderr

	code := int32(0)
	if err := cmd.Run(); err != nil {
		var exitErr *exec.ExitError
		if !errors.As(err, &exitErr) {
			return fmt.Errorf("could not run python plugin in %q: %w", dir, err)
		}
		code = int32(exitErr.ExitCode())
	}
	if err := closer.Close(); err != nil {
		return err
	}
	return server.Send(&pulumirpc.RunPluginResponse{Output: &pulumirpc.RunPluginResponse_Exitcode{Exitcode: code}})
}

func (h *host) InstallDependencies(req *pulumirpc.InstallDependenciesRequest,
	srv pulumirpc.LanguageRuntime_InstallDependenciesServer,
) error {
	opts, err := options(req.Info)
	if err != nil {
		return err
	}
	if req.IsPlugin && opts.Virtualenv == "" &&
		(opts.Toolchain == toolchain.Pip || opts.Toolchain == toolchain.Auto) {
		opts.Virtualenv = "venv"
	}
	closer, stdout, stderr, err := rpcutil.MakeInstallDependenciesStreams(srv, req.IsTerminal)
	if err != nil {
		return err
	}
	defer closer.Close()
	tc, err := toolchain.ResolveToolchain(opts)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, "Installing dependencies...")
	if err := tc.InstallDependencies(srv.Context(), req.Info.ProgramDirectory, req.UseLanguageVersionTools,
		true, stdout, stderr); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "Finished installing dependencies")
	return closer.Close()
}

func (h *host) RuntimeOptionsPrompts(context.Context, *pulumirpc.RuntimeOptionsRequest,
) (*pulumirpc.RuntimeOptionsResponse, error) {
	return &pulumirpc.RuntimeOptionsResponse{}, nil
}

func (h *host) About(ctx context.Context, req *pulumirpc.AboutRequest) (*pulumirpc.AboutResponse, error) {
	var info *pulumirpc.ProgramInfo
	if req != nil {
		info = req.Info
	}
	opts, err := options(info)
	if err != nil {
		return nil, err
	}
	tc, err := toolchain.ResolveToolchain(opts)
	if err != nil {
		return nil, err
	}
	a, err := tc.About(ctx)
	if err != nil {
		return nil, err
	}
	return &pulumirpc.AboutResponse{
		Executable: a.PythonExecutable,
		Version:    a.PythonVersion.String(),
		Metadata: map[string]string{
			"toolchain":        toolchain.Name(opts.Toolchain),
			"toolchainVersion": a.ToolchainVersion.String(),
			"langhost":         "pgfleet-langhost " + version,
		},
	}, nil
}

func (h *host) GetProgramDependencies(ctx context.Context, req *pulumirpc.GetProgramDependenciesRequest,
) (*pulumirpc.GetProgramDependenciesResponse, error) {
	opts, err := options(req.Info)
	if err != nil {
		return nil, err
	}
	tc, err := toolchain.ResolveToolchain(opts)
	if err != nil {
		return nil, err
	}
	list, err := tc.ListPackages(ctx, req.TransitiveDependencies)
	if err != nil {
		return nil, err
	}
	deps := make([]*pulumirpc.DependencyInfo, 0, len(list))
	for _, d := range list {
		deps = append(deps, &pulumirpc.DependencyInfo{Name: d.Name, Version: d.Version})
	}
	return &pulumirpc.GetProgramDependenciesResponse{Dependencies: deps}, nil
}
