import Foundation
import Speech

/// Deepgram's listen messages as recogniser events: interim results become `interim`, final
/// pieces `final`, and a turn ends once, at `speech_final`, `UtteranceEnd` or the answer to a
/// `Finalize`, whichever comes first (`UtteranceEnd` often follows `speech_final`: it is dropped
/// then). A value with no I/O.
public struct ListenTurns: Sendable, Hashable {
    /// Words were heard since the last end of a turn.
    private var heard = false
    /// A `Finalize` is out and its answer has not come.
    private var finalizing = false

    public init() {}

    public mutating func events(for message: ListenMessage) -> [RecognitionEvent] {
        switch message {
        case .speechStarted:
            return [.speechStarted]
        case .results(let results):
            let text = results.transcript.trimmingCharacters(in: .whitespaces)
            var events: [RecognitionEvent] = []
            if !text.isEmpty {
                events.append(results.isFinal ? .final(text) : .interim(text))
                self.heard = true
            }
            if results.isFinal, results.speechFinal || (results.fromFinalize && self.finalizing) {
                events += self.end()
            }
            return events
        case .utteranceEnd:
            return self.end()
        case .metadata, .other:
            return []
        }
    }

    /// The engine asked for the turn to end now. With nothing heard, it ends at once; else at
    /// the `from_finalize` results (or whatever end comes first).
    public mutating func finalizeRequested() -> [RecognitionEvent] {
        guard self.heard else { return [.utteranceEnd] }
        self.finalizing = true
        return []
    }

    private mutating func end() -> [RecognitionEvent] {
        guard self.heard || self.finalizing else { return [] }
        self.heard = false
        self.finalizing = false
        return [.utteranceEnd]
    }
}
