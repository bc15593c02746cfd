package source

import (
	"errors"
	"strings"
	"testing"
)

func TestReadNames(t *testing.T) {
	in := "# comment\n  a.com  \n\nb.com\r\n" + strings.Repeat("x", MaxLineLen+10) + "\nc.com"
	var got []string
	var errs []int
	err := ReadNames(strings.NewReader(in), NameListOptions{}, func(line int, name string, err error) error {
		if err != nil {
			if !errors.Is(err, ErrLineTooLong) {
				t.Errorf("line %d: unexpected error %v", line, err)
			}
			errs = append(errs, line)
			return nil
		}
		got = append(got, name)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, ",") != "a.com,b.com,c.com" || len(errs) != 1 || errs[0] != 5 {
		t.Errorf("names %q, error lines %v", got, errs)
	}
}

func TestReadNamesFirstField(t *testing.T) {
	in := "domain\tbrand\nhp.com\tHP\nphp.net evidence\n"
	var got []string
	ReadNames(strings.NewReader(in), NameListOptions{FirstField: true}, func(_ int, name string, _ error) error {
		got = append(got, name)
		return nil
	})
	if strings.Join(got, ",") != "hp.com,php.net" {
		t.Errorf("got %q", got)
	}
}
