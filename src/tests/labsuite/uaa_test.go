package labsuite_test

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

var _ = Describe("a Director that uses UAA", Ordered, func() {
	BeforeAll(func() { labUp("uaa") })

	It("is used with a UAA client and secret (client-credentials grant)", func() {
		r := bbr(GinkgoT().TempDir(), "sample", "deployment", "pre-backup-check").expectSuccess()
		Expect(r.out).To(ContainSubstring("Deployment 'sample' can be backed up."))
		Expect(labUsers()).To(BeEmpty())
	})

	It("refuses a wrong client secret", func() {
		r := runIn(GinkgoT().TempDir(), append(bbrEnv("sample"), "BOSH_CLIENT_SECRET=wrong"), bbrBin, "deployment", "pre-backup-check")
		Expect(r.code).To(Equal(1))
		Expect(r.err).To(ContainSubstring("refused the credentials"))
	})
})
