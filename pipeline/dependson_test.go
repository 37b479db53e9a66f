package pipeline

import (
	"reflect"
	"strings"
	"testing"
)

const testChangeID = "I0123456789abcdef0123456789abcdef01234567"

func urlDep(raw, host, project string, n int) DependsOn {
	return DependsOn{Kind: DependsOnURL, Raw: raw, Host: host, Project: project, Number: n}
}

func numDep(raw string, n int) DependsOn {
	return DependsOn{Kind: DependsOnNumber, Raw: raw, Number: n}
}

func idDep(id string) DependsOn {
	return DependsOn{Kind: DependsOnChangeID, Raw: id, ChangeID: id}
}

func TestParseDependsOn(t *testing.T) {
	const host = "review.example.org"
	tests := []struct {
		name string
		msg  string
		want []DependsOn
	}{
		{
			name: "new-style URL",
			msg:  "Depends-On: https://review.example.org/c/project/name/+/12345",
			want: []DependsOn{urlDep("https://review.example.org/c/project/name/+/12345", host, "project/name", 12345)},
		},
		{
			name: "new-style URL with patchset",
			msg:  "Depends-On: https://review.example.org/c/project/name/+/12345/1",
			want: []DependsOn{urlDep("https://review.example.org/c/project/name/+/12345/1", host, "project/name", 12345)},
		},
		{
			name: "new-style URL with trailing slash",
			msg:  "Depends-On: https://review.example.org/c/project/name/+/12345/",
			want: []DependsOn{urlDep("https://review.example.org/c/project/name/+/12345/", host, "project/name", 12345)},
		},
		{
			name: "new-style URL with a file path",
			msg:  "Depends-On: https://review.example.org/c/project/name/+/12345/3/src/main.go",
			want: []DependsOn{urlDep("https://review.example.org/c/project/name/+/12345/3/src/main.go", host, "project/name", 12345)},
		},
		{
			name: "new-style URL with query and fragment",
			msg:  "Depends-On: https://review.example.org/c/a/+/7?usp=search\nDepends-On: https://review.example.org/c/b/+/8#message-1",
			want: []DependsOn{
				urlDep("https://review.example.org/c/a/+/7?usp=search", host, "a", 7),
				urlDep("https://review.example.org/c/b/+/8#message-1", host, "b", 8),
			},
		},
		{
			name: "new-style URL under a path prefix",
			msg:  "Depends-On: https://review.example.org/r/c/project/name/+/12345",
			want: []DependsOn{urlDep("https://review.example.org/r/c/project/name/+/12345", host, "project/name", 12345)},
		},
		{
			name: "new-style URL with a port and plain http",
			msg:  "Depends-On: http://review.example.org:8080/c/tools/+/99",
			want: []DependsOn{urlDep("http://review.example.org:8080/c/tools/+/99", "review.example.org:8080", "tools", 99)},
		},
		{
			name: "new-style URL with a deep project",
			msg:  "Depends-On: https://review.example.org/c/mediawiki/extensions/Foo/+/5",
			want: []DependsOn{urlDep("https://review.example.org/c/mediawiki/extensions/Foo/+/5", host, "mediawiki/extensions/Foo", 5)},
		},
		{
			name: "new-style URL with a %2F-escaped project",
			msg:  "Depends-On: https://review.example.org/c/mediawiki%2Fcore/+/12345",
			want: []DependsOn{urlDep("https://review.example.org/c/mediawiki%2Fcore/+/12345", host, "mediawiki/core", 12345)},
		},
		{
			name: "new-style URL with a lower-case %2f",
			msg:  "Depends-On: https://review.example.org/c/a%2fb/+/9",
			want: []DependsOn{urlDep("https://review.example.org/c/a%2fb/+/9", host, "a/b", 9)},
		},
		{
			name: "old-style URL",
			msg:  "Depends-On: https://review.example.org/#/c/12345/",
			want: []DependsOn{urlDep("https://review.example.org/#/c/12345/", host, "", 12345)},
		},
		{
			name: "old-style URL without trailing slash, with patchset",
			msg:  "Depends-On: https://review.example.org/#/c/12345\nDepends-On: https://review.example.org/#/c/678/2",
			want: []DependsOn{
				urlDep("https://review.example.org/#/c/12345", host, "", 12345),
				urlDep("https://review.example.org/#/c/678/2", host, "", 678),
			},
		},
		{
			name: "old-style URL under a path prefix",
			msg:  "Depends-On: https://review.example.org/r/#/c/4242/",
			want: []DependsOn{urlDep("https://review.example.org/r/#/c/4242/", host, "", 4242)},
		},
		{
			name: "/c/<number> without project",
			msg:  "Depends-On: https://review.example.org/c/12345",
			want: []DependsOn{urlDep("https://review.example.org/c/12345", host, "", 12345)},
		},
		{
			name: "short URL",
			msg:  "Depends-On: https://review.example.org/12345",
			want: []DependsOn{urlDep("https://review.example.org/12345", host, "", 12345)},
		},
		{
			name: "short URL with trailing slash and prefix",
			msg:  "Depends-On: https://review.example.org/r/12345/",
			want: []DependsOn{urlDep("https://review.example.org/r/12345/", host, "", 12345)},
		},
		{
			name: "bare number",
			msg:  "Depends-On: 12345",
			want: []DependsOn{numDep("12345", 12345)},
		},
		{
			name: "legacy Change-Id",
			msg:  "Depends-On: " + testChangeID,
			want: []DependsOn{idDep(testChangeID)},
		},
		{
			name: "legacy Change-Id in upper-case hex",
			msg:  "Depends-On: " + strings.ToUpper(testChangeID),
			want: []DependsOn{idDep(strings.ToUpper(testChangeID))},
		},
		{
			name: "Change-Id of the wrong length",
			msg:  "Depends-On: " + testChangeID[:40] + "\nDepends-On: " + testChangeID + "0",
			want: nil,
		},
		{
			name: "footer key is case-insensitive",
			msg:  "depends-on: 1\nDEPENDS-ON: 2\nDePeNdS-oN: 3",
			want: []DependsOn{numDep("1", 1), numDep("2", 2), numDep("3", 3)},
		},
		{
			name: "spacing around key and value",
			msg:  "Depends-On:4\n  Depends-On: \t 5 \t\n\tDepends-On: 6",
			want: []DependsOn{numDep("4", 4), numDep("5", 5), numDep("6", 6)},
		},
		{
			name: "punctuation and angle brackets around the value",
			msg:  "Depends-On: <https://review.example.org/c/a/+/10>\nDepends-On: 11.\nDepends-On: https://review.example.org/12;",
			want: []DependsOn{
				urlDep("https://review.example.org/c/a/+/10", host, "a", 10),
				numDep("11", 11),
				urlDep("https://review.example.org/12", host, "", 12),
			},
		},
		{
			name: "duplicates removed, first kept, order preserved",
			msg: "Depends-On: 5\nDepends-On: " + testChangeID + "\nDepends-On: https://review.example.org/c/a/+/7\n" +
				"depends-on: 5\nDepends-On: https://review.example.org/c/a/+/7/2\nDepends-On: " + testChangeID,
			want: []DependsOn{numDep("5", 5), idDep(testChangeID), urlDep("https://review.example.org/c/a/+/7", host, "a", 7)},
		},
		{
			name: "same number in different projects is not a duplicate",
			msg:  "Depends-On: https://review.example.org/c/a/+/12\nDepends-On: https://review.example.org/c/b/+/12",
			want: []DependsOn{urlDep("https://review.example.org/c/a/+/12", host, "a", 12), urlDep("https://review.example.org/c/b/+/12", host, "b", 12)},
		},
		{
			name: "same change on another Gerrit is not a duplicate",
			msg:  "Depends-On: https://review.example.org/c/a/+/12\nDepends-On: https://gerrit.example.com/c/a/+/12",
			want: []DependsOn{urlDep("https://review.example.org/c/a/+/12", host, "a", 12), urlDep("https://gerrit.example.com/c/a/+/12", "gerrit.example.com", "a", 12)},
		},
		{
			name: "junk lines ignored",
			msg: "Depends-On:\nDepends-On: \nDepends-On: soon\nDepends-On: 0\nDepends-On: -3\n" +
				"Depends-On: 99999999999999999999999\nDepends-On: https://review.example.org/c/a/+/0\n" +
				"Depends-On: https://review.example.org/\nDepends-On: ftp://review.example.org/5\n" +
				"Depends-On: https://review.example.org/c/a/+/5 and more\nDepends-On: 5 6\n" +
				"Depends On: 7\nDepends-Onx: 8\nXDepends-On: 9\n> Depends-On: 10\nSee Depends-On: 11\n" +
				"Depends-On: I0123\nDepends-On: i0123456789abcdef0123456789abcdef01234567\nDepends-On: <<12>",
			want: nil,
		},
		{
			name: "footers in the middle of the message",
			msg: "Fix the frobnicator\n\nDepends-On: 100\nThe frobnicator broke when the widget\nwas empty.\n\n" +
				"Depends-On: https://review.example.org/c/other/+/200\n\nBug: T12345\nChange-Id: " + testChangeID + "\n",
			want: []DependsOn{numDep("100", 100), urlDep("https://review.example.org/c/other/+/200", host, "other", 200)},
		},
		{
			name: "footer block among other footers",
			msg: "Subject\n\nBody.\n\nBug: T1\nDepends-On: 300\nReviewed-by: Someone <someone@example.org>\n" +
				"Depends-On: " + testChangeID + "\nChange-Id: Iffffffffffffffffffffffffffffffffffffffff",
			want: []DependsOn{numDep("300", 300), idDep(testChangeID)},
		},
		{
			name: "CRLF line endings",
			msg:  "Subject\r\n\r\nDepends-On: https://review.example.org/c/a/+/9\r\nDepends-On: 10\r\n",
			want: []DependsOn{urlDep("https://review.example.org/c/a/+/9", host, "a", 9), numDep("10", 10)},
		},
		{
			name: "no footer",
			msg:  "Just a subject\n\nAnd a body that mentions depends-on in passing.",
			want: nil,
		},
		{
			name: "empty message",
			msg:  "",
			want: nil,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := ParseDependsOn(tc.msg)
			if len(got) == 0 && len(tc.want) == 0 {
				return
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("ParseDependsOn(%q)\n got: %+v\nwant: %+v", tc.msg, got, tc.want)
			}
			checkDependsOn(t, tc.msg, got)
		})
	}
}

// checkDependsOn verifies the promises every result of ParseDependsOn keeps,
// whatever the message.
func checkDependsOn(t *testing.T, msg string, got []DependsOn) {
	t.Helper()
	seen := map[DependsOn]bool{}
	for i, d := range got {
		if d.Raw == "" {
			t.Fatalf("result %d has an empty Raw: %+v", i, d)
		}
		if strings.ContainsAny(d.Raw, " \t\r\n") {
			t.Fatalf("result %d has white space in Raw: %+v", i, d)
		}
		if !strings.Contains(msg, d.Raw) {
			t.Fatalf("result %d: Raw %q is not in the message", i, d.Raw)
		}
		switch d.Kind {
		case DependsOnURL:
			if d.Number <= 0 || d.Host == "" || d.ChangeID != "" {
				t.Fatalf("result %d: bad URL reference %+v", i, d)
			}
		case DependsOnNumber:
			if d.Number <= 0 || d.Host != "" || d.Project != "" || d.ChangeID != "" {
				t.Fatalf("result %d: bad number reference %+v", i, d)
			}
		case DependsOnChangeID:
			if d.Number != 0 || d.Host != "" || d.Project != "" || d.ChangeID != d.Raw || !changeIDRE.MatchString(d.ChangeID) {
				t.Fatalf("result %d: bad Change-Id reference %+v", i, d)
			}
		default:
			t.Fatalf("result %d has unknown kind %q: %+v", i, d.Kind, d)
		}
		key := d
		key.Raw = ""
		if seen[key] {
			t.Fatalf("result %d duplicates an earlier one: %+v in %+v", i, d, got)
		}
		seen[key] = true
		// Raw is the reference as written: a footer of it alone reads
		// back as the same reference.
		again := ParseDependsOn("Depends-On: " + d.Raw)
		if len(again) != 1 || again[0] != d {
			t.Fatalf("result %d does not read back from its Raw: %+v gives %+v", i, d, again)
		}
	}
	// Nothing is lost: every footer that reads on its own is in the
	// result, as itself or as the earlier reference it duplicates.
	for n, line := range strings.Split(msg, "\n") {
		for _, d := range ParseDependsOn(line) {
			key := d
			key.Raw = ""
			if seen[key] {
				continue
			}
			t.Fatalf("line %d: %+v is missing from the result %+v", n+1, d, got)
		}
	}
}

// FuzzParseDependsOn feeds arbitrary commit messages to ParseDependsOn: it
// must not panic, and what it returns must keep checkDependsOn's promises.
// Seeds: testdata/fuzz/FuzzParseDependsOn plus the ones below.
func FuzzParseDependsOn(f *testing.F) {
	for _, s := range []string{
		"",
		"Depends-On: 12345",
		"Depends-On: " + testChangeID,
		"Depends-On: https://review.example.org/c/project/name/+/12345/1",
		"Depends-On: https://review.example.org/#/c/12345/",
		"Depends-On: https://review.example.org/12345",
		"depends-on: <https://review.example.org/r/c/a%2Fb/+/7>.\nDEPENDS-ON: 7\nDepends-On: 7",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, msg string) {
		got := ParseDependsOn(msg)
		checkDependsOn(t, msg, got)
		if again := ParseDependsOn(msg); !reflect.DeepEqual(got, again) {
			t.Fatalf("not deterministic: %+v then %+v", got, again)
		}
	})
}
