package artifact_test

import (
	"os"
	"path/filepath"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/bbr-release/bbr/src/artifact"
	"github.com/bbr-release/bbr/src/artifact/destinationtest"
)

var _ = Describe("Local, the artifact directory as a destination", func() {
	destinationtest.Run(destinationtest.Harness{
		New: func() artifact.Destination { return artifact.Local{Dir: GinkgoT().TempDir()} },
		Corrupt: func(dest artifact.Destination, backup, file string, content []byte) {
			Expect(os.WriteFile(filepath.Join(dest.(artifact.Local).Dir, backup, file), content, 0o600)).To(Succeed())
		},
		Crash: func(dest artifact.Destination, backup string) {
			dir := filepath.Join(dest.(artifact.Local).Dir, backup+artifact.InProgressSuffix)
			Expect(os.Mkdir(dir, 0o700)).To(Succeed())
			Expect(os.WriteFile(filepath.Join(dir, "db-0-pg.tar"), []byte("partial"), 0o600)).To(Succeed())
		},
	})
})
