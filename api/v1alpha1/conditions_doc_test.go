package v1alpha1

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"strconv"
	"strings"
	"testing"
)

// TestEveryConditionAndReasonIsInTheStatusDoc catches the next drift between
// the API and docs/status.md, the page users read when a Record is not
// Ready: every condition type and reason constant declared in conditions.go
// must appear there, in backquotes, as `Value`. A new reason fails this test
// until the page says what it means and what to do.
func TestEveryConditionAndReasonIsInTheStatusDoc(t *testing.T) {
	doc, err := os.ReadFile("../../docs/status.md")
	if err != nil {
		t.Fatal(err)
	}
	consts := conditionConsts(t, "conditions.go")
	if len(consts) < 10 {
		t.Fatalf("got %d condition and reason constants in conditions.go, want them all: is the parser looking at the right file?", len(consts))
	}
	for name, value := range consts {
		t.Run(name+" is named in docs/status.md", func(t *testing.T) {
			if !strings.Contains(string(doc), "`"+value+"`") {
				t.Errorf("got docs/status.md without `%s` (%s), want it named where its condition is explained", value, name)
			}
		})
	}
}

// conditionConsts returns the string constants of file whose names start
// with Condition or Reason, by name.
func conditionConsts(t *testing.T, file string) map[string]string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), file, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, decl := range f.Decls {
		gen, ok := decl.(*ast.GenDecl)
		if !ok || gen.Tok != token.CONST {
			continue
		}
		for _, spec := range gen.Specs {
			vs := spec.(*ast.ValueSpec)
			for i, id := range vs.Names {
				if !strings.HasPrefix(id.Name, "Condition") && !strings.HasPrefix(id.Name, "Reason") {
					continue
				}
				lit, ok := vs.Values[i].(*ast.BasicLit)
				if !ok || lit.Kind != token.STRING {
					t.Fatalf("got %s declared as %T, want a string literal", id.Name, vs.Values[i])
				}
				v, err := strconv.Unquote(lit.Value)
				if err != nil {
					t.Fatal(err)
				}
				out[id.Name] = v
			}
		}
	}
	return out
}
