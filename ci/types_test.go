package ci

// Go types for the files in ci/, written from the published documentation
// (GitHub: "Metadata syntax reference" for action.yml; GitLab: "CI/CD YAML
// syntax reference" for job keywords), so the files are decoded strictly:
// a key the documentation does not define is an error.

import (
	"fmt"

	"go.yaml.in/yaml/v3"
)

// actionMetadata is action.yml (GitHub "Metadata syntax reference").
type actionMetadata struct {
	Name        string                  `yaml:"name"`
	Author      string                  `yaml:"author"`
	Description string                  `yaml:"description"`
	Inputs      map[string]actionInput  `yaml:"inputs"`
	Outputs     map[string]actionOutput `yaml:"outputs"`
	Runs        actionRuns              `yaml:"runs"`
	Branding    struct {
		Icon  string `yaml:"icon"`
		Color string `yaml:"color"`
	} `yaml:"branding"`
}

type actionInput struct {
	Description        string `yaml:"description"`
	Required           bool   `yaml:"required"`
	Default            string `yaml:"default"`
	DeprecationMessage string `yaml:"deprecationMessage"`
}

// actionOutput is an output of a composite action: value is required.
type actionOutput struct {
	Description string `yaml:"description"`
	Value       string `yaml:"value"`
}

// actionRuns is runs: for composite actions (using: composite, steps).
type actionRuns struct {
	Using string       `yaml:"using"`
	Steps []actionStep `yaml:"steps"`
}

// actionStep is runs.steps[*] of a composite action.
type actionStep struct {
	Name             string            `yaml:"name"`
	ID               string            `yaml:"id"`
	If               string            `yaml:"if"`
	Run              string            `yaml:"run"`
	Shell            string            `yaml:"shell"`
	Uses             string            `yaml:"uses"`
	With             map[string]string `yaml:"with"`
	Env              map[string]string `yaml:"env"`
	WorkingDirectory string            `yaml:"working-directory"`
	ContinueOnError  string            `yaml:"continue-on-error"`
}

// gitlabJob is a job (GitLab "CI/CD YAML syntax reference": the job
// keywords this template may use).
type gitlabJob struct {
	Image        string                    `yaml:"image"`
	Services     []gitlabService           `yaml:"services"`
	Variables    map[string]gitlabVariable `yaml:"variables"`
	BeforeScript []string                  `yaml:"before_script"`
	Script       []string                  `yaml:"script"`
	AfterScript  []string                  `yaml:"after_script"`
	Stage        string                    `yaml:"stage"`
	Tags         []string                  `yaml:"tags"`
	Timeout      string                    `yaml:"timeout"`
	Extends      string                    `yaml:"extends"`
	Artifacts    gitlabArtifacts           `yaml:"artifacts"`
}

// gitlabService is services[*] in its long form.
type gitlabService struct {
	Name       string            `yaml:"name"`
	Alias      string            `yaml:"alias"`
	Command    []string          `yaml:"command"`
	Entrypoint []string          `yaml:"entrypoint"`
	Variables  map[string]string `yaml:"variables"`
}

// gitlabVariable is a value, or {value, description, options, expand}.
type gitlabVariable struct {
	Value       string   `yaml:"value"`
	Description string   `yaml:"description"`
	Options     []string `yaml:"options"`
	Expand      *bool    `yaml:"expand"`
}

// UnmarshalYAML accepts both forms, the long one strictly.
func (v *gitlabVariable) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		v.Value = n.Value
		return nil
	}
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: a variable is a string or a mapping", n.Line)
	}
	type plain gitlabVariable
	var p plain
	for i := 0; i+1 < len(n.Content); i += 2 {
		switch n.Content[i].Value {
		case "value", "description", "options", "expand":
		default:
			return fmt.Errorf("line %d: unknown variable key %q", n.Content[i].Line, n.Content[i].Value)
		}
	}
	if err := n.Decode(&p); err != nil {
		return err
	}
	*v = gitlabVariable(p)
	return nil
}

// gitlabArtifacts is artifacts:.
type gitlabArtifacts struct {
	Name     string   `yaml:"name"`
	When     string   `yaml:"when"`
	ExposeAs string   `yaml:"expose_as"`
	ExpireIn string   `yaml:"expire_in"`
	Paths    []string `yaml:"paths"`
	Exclude  []string `yaml:"exclude"`
	Untrack  bool     `yaml:"untracked"`
	Public   *bool    `yaml:"public"`
	Reports  struct {
		JUnit any `yaml:"junit"` // a path or a list of paths
	} `yaml:"reports"`
}
