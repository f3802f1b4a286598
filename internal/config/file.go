package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"strings"

	"github.com/spf13/pflag"
	"sigs.k8s.io/yaml"
)

// ApplyFile reads a YAML config file whose keys are flag names and sets
// every flag that was not given on the command line. A missing file is
// fine unless required (the user named it with --config). Unknown keys
// and wrongly typed values are errors naming the key.
func ApplyFile(flags *pflag.FlagSet, path string, required bool) error {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) && !required {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read config file: %w", err)
	}
	var raw map[string]any
	if err := yaml.Unmarshal(data, &raw); err != nil {
		return fmt.Errorf("config file %s is not valid YAML: %w", path, err)
	}
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, key := range keys {
		f := flags.Lookup(key)
		if f == nil || key == "config" {
			return fmt.Errorf("config file %s: unknown key %q (keys are the flag names of this command, see --help)", path, key)
		}
		if f.Changed {
			continue // flags win
		}
		values, err := scalarStrings(raw[key])
		if err != nil {
			return fmt.Errorf("config file %s: key %q: %w", path, key, err)
		}
		if sv, ok := f.Value.(pflag.SliceValue); ok {
			if err := sv.Replace(values); err != nil {
				return fmt.Errorf("config file %s: key %q: %w", path, key, err)
			}
			continue
		}
		if len(values) != 1 {
			return fmt.Errorf("config file %s: key %q takes one value, got a list", path, key)
		}
		if err := f.Value.Set(values[0]); err != nil {
			return fmt.Errorf("config file %s: key %q: invalid value %q: %w", path, key, values[0], err)
		}
	}
	return nil
}

func scalarStrings(v any) ([]string, error) {
	switch t := v.(type) {
	case []any:
		out := make([]string, 0, len(t))
		for _, e := range t {
			s, err := scalarStrings(e)
			if err != nil {
				return nil, err
			}
			out = append(out, s...)
		}
		return out, nil
	case map[string]any:
		return nil, fmt.Errorf("expected a value or a list, got a map")
	case nil:
		return []string{""}, nil
	case float64:
		return []string{strings.TrimSuffix(fmt.Sprintf("%f", t), ".000000")}, nil
	default:
		return []string{fmt.Sprint(t)}, nil
	}
}
