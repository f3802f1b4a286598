package embedded

import (
	"io/fs"
	"reflect"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Release tells the kernel that this process no longer needs the pages of
// the compressed assets (MADV_DONTNEED on their part of the binary's
// read-only data). Reading an asset (staging, importing the images) maps
// up to ~45 MB of the binary that would otherwise stay counted in the
// process's RSS for its whole life; the pages are clean copies of the
// binary file, so dropping them loses nothing: a later read faults them
// back in from the page cache. It returns the number of bytes released.
//
// It is best effort: where the embedded file system does not expose its
// data as this Go version's does, it releases nothing.
func Release() int64 {
	return assets.release()
}

func (s *store) release() int64 {
	entries, err := fs.ReadDir(s.fsys, ".")
	if err != nil {
		return 0
	}
	var released int64
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		f, err := s.fsys.Open(e.Name())
		if err != nil {
			continue
		}
		if data, ok := embeddedData(f); ok {
			released += dontNeed(data)
		}
		_ = f.Close()
	}
	return released
}

// embeddedData returns the bytes an embed.FS file reads from, in place
// (the string in the binary's read-only data), if f is one: embed's
// openFile{f *file{name, data string, ...}}. Reflection reads the
// unexported fields without copying; any other shape returns false.
func embeddedData(f fs.File) (string, bool) {
	v := reflect.ValueOf(f)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct || v.Elem().Type().PkgPath() != "embed" {
		return "", false
	}
	inner := v.Elem().FieldByName("f")
	if inner.Kind() != reflect.Pointer || inner.IsNil() || inner.Elem().Kind() != reflect.Struct {
		return "", false
	}
	data := inner.Elem().FieldByName("data")
	if data.Kind() != reflect.String {
		return "", false
	}
	return data.String(), true
}

// dontNeed drops the whole pages inside s from this process's memory and
// returns how many bytes that covered.
func dontNeed(s string) int64 {
	if len(s) == 0 {
		return 0
	}
	page := uintptr(unix.Getpagesize())
	start := uintptr(unsafe.Pointer(unsafe.StringData(s)))
	end := start + uintptr(len(s))
	first, last := (start+page-1)&^(page-1), end&^(page-1)
	if last <= first {
		return 0
	}
	// Read-only memory: the slice is only handed to madvise, never written.
	b := unsafe.Slice(unsafe.StringData(s), len(s))[first-start : last-start]
	if err := unix.Madvise(b, unix.MADV_DONTNEED); err != nil {
		return 0
	}
	return int64(last - first)
}
