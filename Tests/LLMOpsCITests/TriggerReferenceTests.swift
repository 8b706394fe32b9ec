import Testing
@testable import LLMOpsCI

@Suite struct TriggerReferenceTests {
    @Test func roundTripsBranchCommitAndKey() throws {
        let reference = TriggerReference(branch: "feature/add;x=1 ünïcode", commit: "abc123", key: "00ff")

        let parsed = try #require(TriggerReference.parse(reference.encoded))

        #expect(parsed == reference)
        #expect(!reference.encoded.contains(" "))
    }

    @Test(arguments: [String(repeating: "a", count: 400), String(repeating: "é", count: 300), String(repeating: "%;", count: 200)])
    func staysWithinServerLimit(branch: String) throws {
        let encoded = TriggerReference(branch: branch, commit: String(repeating: "f", count: 40), key: "0123456789abcdef").encoded

        #expect(encoded.count <= TriggerReference.maxLength)
        let parsed = try #require(TriggerReference.parse(encoded))
        #expect(parsed.key == "0123456789abcdef")
        #expect(parsed.commit == String(repeating: "f", count: 40))
    }

    @Test func readsHandWrittenReference() throws {
        let parsed = try #require(TriggerReference.parse("branch=main;sha=deadbeef"))

        #expect(parsed.branch == "main")
        #expect(parsed.commit == "deadbeef")
        #expect(parsed.key == nil)
    }

    @Test func ignoresFreeText() {
        #expect(TriggerReference.parse("Retrigger of run #4") == nil)
    }
}
